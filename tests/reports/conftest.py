from __future__ import annotations

from typing import Any

import pytest

from apps.console.roles import role_join
from apps.teams.models import Team
from tests.support.people import make_user

from .history import Step, Story, build


@pytest.fixture
def billing(transactional_db) -> Team:
    return Team.objects.create(name="Billing", slug="billing", time_zone="Europe/Berlin")


@pytest.fixture
def shipping(transactional_db) -> Team:
    return Team.objects.create(name="Shipping", slug="shipping")


@pytest.fixture
def alice(transactional_db, billing) -> Any:
    user = make_user("alice@example.com", "Alice", "Agent")
    billing.members.add(user)
    return user


@pytest.fixture
def bob(transactional_db, shipping) -> Any:
    user = make_user("bob@example.com", "Bob", "Agent")
    shipping.members.add(user)
    return user


@pytest.fixture
def supervisor(transactional_db) -> Any:
    user = make_user("sue@example.com", "Sue", "Supervisor")
    role_join(user=user, role="supervisor")
    return user


@pytest.fixture
def histories(billing, shipping, alice, bob) -> dict[str, Any]:
    """Five conversations started on 2026-11-02 (UTC), each with known figures:

    A (Billing): answered by the assistant, closed after 10 min, rated 5, answer helpful.
    B (Billing): answered, then silent (idle 24 h → resolved by the assistant).
    C (Billing, Alice): answered, asked for a person at +2 min, Alice claimed at +5 and replied at +7
      (first response 300 s), closed at +30 (1800 s), rated 3, answer unhelpful, SLA met.
    D (Shipping, Bob): asked for a person at +1 min with no answer, Bob claimed and replied at +61
      (3600 s), still open, SLA breached.
    E (Shipping): one customer message, nothing else.
    """
    return {
        "A": build(
            Story(
                [Step(0, "customer"), Step(1, "assistant"), Step(10, "close")],
                team=billing,
                csat=5,
                feedback=[True],
            )
        ),
        "B": build(Story([Step(0, "customer"), Step(1, "assistant")], team=billing)),
        "C": build(
            Story(
                [
                    Step(0, "customer"),
                    Step(1, "assistant"),
                    Step(2, "human"),
                    Step(5, "claim", alice),
                    Step(7, "agent", alice),
                    Step(30, "close"),
                ],
                team=billing,
                csat=3,
                feedback=[False],
                sla_breached=False,
            )
        ),
        "D": build(
            Story(
                [Step(0, "customer"), Step(1, "human"), Step(60, "claim", bob), Step(61, "agent", bob)],
                team=shipping,
                sla_breached=True,
            )
        ),
        "E": build(Story([Step(0, "customer")], team=shipping)),
    }
