"""Automatic assignment stays within the conversation's team (apps/console/assignment.py)."""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async

from apps.conversations.models import Conversation
from apps.conversations.services import conversation_request_human
from apps.teams.models import Team
from tests.support.factories import ConversationFactory, CustomerFactory
from tests.support.people import make_user

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("isolated_async_state")]


@sync_to_async
def people() -> tuple[Team, Team, list]:
    support = Team.objects.create(name="Support", slug="support")
    billing = Team.objects.create(name="Billing", slug="billing")
    alice = make_user("alice@example.com", "Alice", "Agent")
    bob = make_user("bob@example.com", "Bob", "Agent")
    dave = make_user("dave@example.com", "Dave", "Agent")  # in no team
    support.members.add(alice)
    billing.members.add(bob)
    return support, billing, [alice, bob, dave]


@sync_to_async
def asks_for_a_person(team: Team | None) -> Conversation:
    conversation = ConversationFactory(customer=CustomerFactory(), team=team)
    conversation_request_human(conversation_id=conversation.pk)
    conversation.refresh_from_db()
    return conversation


async def test_a_waiting_conversation_goes_to_an_online_agent_of_its_team(agent_socket, settings) -> None:
    settings.CONSOLE_AUTO_ASSIGN = True
    settings.CONSOLE_AUTO_ASSIGN_LIMIT = 5
    support, billing, (alice, bob, dave) = await people()
    for user in (alice, bob, dave):
        await agent_socket(user)  # all online

    to_billing = [await asks_for_a_person(billing) for _ in range(3)]
    to_support = [await asks_for_a_person(support) for _ in range(2)]
    to_nobody = await asks_for_a_person(None)

    assert [c.assignee_id for c in to_billing] == [bob.pk] * 3
    assert [c.assignee_id for c in to_support] == [alice.pk] * 2
    assert to_nobody.assignee_id == dave.pk  # no team: the agents in no team


async def test_a_team_with_nobody_online_keeps_its_conversation_waiting(agent_socket, settings) -> None:
    settings.CONSOLE_AUTO_ASSIGN = True
    support, billing, (alice, _bob, _dave) = await people()
    await agent_socket(alice)

    waiting = await asks_for_a_person(billing)

    assert (waiting.state, waiting.assignee_id) == ("waiting", None)
