"""Routing a new conversation to a team: the widget's setting first, then the first matching
rule (apps/teams/services.py), and the visibility rule the console applies (apps/teams/selectors.py)."""

from __future__ import annotations

import uuid

import pytest
from django.core.exceptions import ValidationError

from apps.conversations.services import message_receive
from apps.teams.models import Team, TeamRule
from apps.teams.selectors import conversation_visible
from apps.teams.services import team_route, team_rule_matches
from tests.support.factories import CustomerFactory


def rule(keywords: str = "", pattern: str = "") -> TeamRule:
    return TeamRule(keywords=keywords, pattern=pattern)


@pytest.mark.parametrize(
    ("keywords", "pattern", "text", "matches"),
    [
        ("invoice, VAT", "", "Where is my INVOICE?", True),
        ("invoice, VAT", "", "The vat number is wrong", True),
        ("invoice", "", "invoices are late", False),  # whole words only
        ("charged twice", "", "I was charged  twice", False),
        ("charged twice", "", "I was Charged twice!", True),
        ("", r"PP-\d{4}", "order pp-1001 never came", True),
        ("", r"PP-\d{4}", "order 1001 never came", False),
        ("refund", r"PP-\d{4}", "please refund me", True),
        ("", "", "anything at all", True),  # a catch-all
        ("", "(", "a pattern saved around the admin's check", False),
    ],
)
def test_a_rule_matches_a_keyword_as_a_word_or_its_pattern(keywords, pattern, text, matches) -> None:
    assert team_rule_matches(rule=rule(keywords, pattern), text=text) is matches


def test_the_admin_refuses_a_rule_whose_pattern_is_not_a_regular_expression() -> None:
    with pytest.raises(ValidationError) as refused:
        rule(pattern="(unclosed").clean()
    assert list(refused.value.message_dict) == ["pattern"]


@pytest.mark.django_db
def test_the_widgets_team_wins_then_the_first_enabled_rule_by_order() -> None:
    support = Team.objects.create(name="Support", slug="support")
    billing = Team.objects.create(name="Billing", slug="billing")
    sales = Team.objects.create(name="Sales", slug="sales")
    TeamRule.objects.create(team=sales, keywords="invoice", order=1, enabled=False)
    TeamRule.objects.create(team=billing, keywords="invoice", order=5)
    TeamRule.objects.create(team=support, keywords="", order=9)  # everything else

    assert team_route(slug="sales", text="my invoice") == sales
    assert team_route(slug=None, text="my invoice") == billing
    assert team_route(slug="no-such-team", text="my invoice") == billing  # unknown: as if unset
    assert team_route(slug="x" * 500, text="hello") == support
    TeamRule.objects.filter(team=support).delete()
    assert team_route(slug="", text="hello") is None


@pytest.mark.django_db
def test_only_a_new_conversation_is_routed_by_its_first_message() -> None:
    billing = Team.objects.create(name="Billing", slug="billing")
    TeamRule.objects.create(team=billing, keywords="invoice")
    customer = CustomerFactory()

    first = message_receive(customer_id=customer.pk, client_msg_id=uuid.uuid4(), text="Hello")
    later = message_receive(customer_id=customer.pk, client_msg_id=uuid.uuid4(), text="About my invoice")
    later.conversation.refresh_from_db()

    assert later.conversation.pk == first.conversation.pk
    assert later.conversation.team_id is None  # the first message named nothing; later ones do not route


@pytest.mark.parametrize(
    ("team_id", "assignee_id", "team_ids", "sees_all", "visible"),
    [
        (1, None, {1, 2}, False, True),  # my team's
        (3, None, {1, 2}, False, False),  # another team's
        (3, 7, {1, 2}, False, True),  # another team's, but mine
        (3, 8, set(), True, True),  # a supervisor sees all
        (None, None, set(), False, True),  # no team: agents in no team see it
        (None, None, {1}, False, False),  # ... agents in a team do not
        (1, None, set(), False, False),  # an agent in no team sees no team's conversations
    ],
)
def test_who_sees_a_conversation(team_id, assignee_id, team_ids, sees_all, visible) -> None:
    assert conversation_visible(
        team_id=team_id, assignee_id=assignee_id, agent_id=7, team_ids=team_ids, sees_all=sees_all
    ) is visible


@pytest.mark.django_db
def test_the_demo_has_support_with_the_demo_agent_and_billing_with_its_rule(settings) -> None:
    from django.contrib.auth import get_user_model

    from apps.console.demo import demo_console_setup

    agent = get_user_model().objects.create_user(username=settings.DEMO_AGENT_EMAIL, is_staff=True)
    demo_console_setup()
    demo_console_setup()  # idempotent

    assert [(t.slug, [u.pk for u in t.members.all()]) for t in Team.objects.order_by("slug")] == [
        ("billing", []),
        ("support", [agent.pk]),
    ]
    assert team_route(slug=None, text="Can I get an invoice?").slug == "billing"
