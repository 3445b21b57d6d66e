"""SLA clocks through the real services: started by the handover, stopped by the first reply,
by closing and by a hand-back, in the same transaction; marked breached exactly once."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, time, timedelta

import pytest
from django.db import transaction

from apps.console import services as console
from apps.conversations.services import conversation_request_human
from apps.sla.models import BusinessHours, SlaClock, SlaPolicy
from apps.sla.services import sla_breaches_mark, sla_clocks_start
from apps.sla.tasks import sla_breaches_check_task
from apps.teams.models import Team
from tests.support.factories import ConversationFactory

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def default_policy():
    return SlaPolicy.objects.create(first_response_s=300, resolution_s=3600)


def clocks(conversation) -> dict[str, SlaClock]:
    return {c.kind: c for c in SlaClock.objects.filter(conversation=conversation)}


def test_the_handover_starts_both_clocks_due_by_the_default_policy(default_policy, customer):
    conversation = ConversationFactory(customer=customer)
    conversation_request_human(conversation_id=conversation.pk)

    running = clocks(conversation)
    assert sorted(running) == ["first_response", "resolution"]
    first, resolution = running["first_response"], running["resolution"]
    assert first.due_at - first.started_at == timedelta(seconds=300)
    assert resolution.due_at - resolution.started_at == timedelta(seconds=3600)
    assert [first.stopped_at, first.breached_at, resolution.stopped_at] == [None, None, None]


def test_asking_again_while_waiting_keeps_the_clocks(default_policy, customer):
    conversation = ConversationFactory(customer=customer)
    conversation_request_human(conversation_id=conversation.pk)
    before = clocks(conversation)
    conversation_request_human(conversation_id=conversation.pk)
    assert clocks(conversation)["first_response"].due_at == before["first_response"].due_at


def test_no_policy_no_clocks(customer):
    conversation = ConversationFactory(customer=customer)
    conversation_request_human(conversation_id=conversation.pk)
    assert clocks(conversation) == {}


def test_a_rolled_back_handover_leaves_no_clock(default_policy, customer):
    conversation = ConversationFactory(customer=customer)
    with pytest.raises(RuntimeError), transaction.atomic():
        conversation_request_human(conversation_id=conversation.pk)
        raise RuntimeError("the caller failed after the handover")
    assert clocks(conversation) == {}


def test_the_team_and_priority_policy_wins_over_the_defaults(default_policy, customer):
    team = Team.objects.create(name="Billing", slug="billing")
    SlaPolicy.objects.create(team=team, first_response_s=120, resolution_s=None)
    SlaPolicy.objects.create(team=team, priority="urgent", first_response_s=60, resolution_s=600)
    SlaPolicy.objects.create(priority="urgent", first_response_s=30, resolution_s=30)
    urgent = ConversationFactory(customer=customer, team=team, priority="urgent")
    normal = ConversationFactory(customer=customer, team=team)
    conversation_request_human(conversation_id=urgent.pk)
    conversation_request_human(conversation_id=normal.pk)

    def targets(conversation):
        return {k: (c.due_at - c.started_at).total_seconds() for k, c in clocks(conversation).items()}

    assert targets(urgent) == {"first_response": 60, "resolution": 600}
    assert targets(normal) == {"first_response": 120}  # the team's policy sets no resolution target


def test_due_at_counts_the_teams_business_hours_in_its_time_zone(customer):
    team = Team.objects.create(name="Berlin", slug="berlin", time_zone="Europe/Berlin")
    SlaPolicy.objects.create(team=team, first_response_s=2 * 3600)
    for weekday in range(5):
        BusinessHours.objects.create(team=team, weekday=weekday, opens=time(9), closes=time(18))
    conversation = ConversationFactory(customer=customer, team=team)
    friday_5pm_cet = datetime(2025, 3, 28, 16, 0, tzinfo=UTC)

    (clock,) = sla_clocks_start(conversation=conversation, at=friday_5pm_cet)

    # One hour on Friday; Monday 31 March (summer time) 09:00-10:00 CEST = 07:00-08:00 UTC.
    assert clock.due_at == datetime(2025, 3, 31, 8, 0, tzinfo=UTC)


def test_the_first_reply_stops_first_response_and_closing_stops_resolution(default_policy, customer, agent):
    conversation = ConversationFactory(customer=customer)
    conversation_request_human(conversation_id=conversation.pk)
    console.conversation_claim(conversation_id=conversation.pk, agent=agent)
    assert clocks(conversation)["first_response"].stopped_at is None  # claiming is not answering

    message, _ = console.agent_reply(
        conversation_id=conversation.pk, agent=agent, client_msg_id=uuid.uuid4(), text="Hello, I'm here."
    )
    after_reply = clocks(conversation)
    assert after_reply["first_response"].stopped_at is not None
    assert after_reply["resolution"].stopped_at is None

    console.conversation_close(conversation_id=conversation.pk, agent=agent)
    closed = clocks(conversation)
    assert closed["resolution"].stopped_at is not None
    assert closed["first_response"].stopped_at == after_reply["first_response"].stopped_at
    assert [c.breached_at for c in closed.values()] == [None, None]  # met


def test_a_hand_back_to_the_assistant_stops_the_clocks_and_a_new_handover_restarts_them(
    default_policy, customer, agent
):
    conversation = ConversationFactory(customer=customer)
    conversation_request_human(conversation_id=conversation.pk)
    first_start = clocks(conversation)["first_response"].started_at
    console.conversation_claim(conversation_id=conversation.pk, agent=agent)
    console.conversation_release(conversation_id=conversation.pk, agent=agent)
    assert all(c.stopped_at is not None for c in clocks(conversation).values())

    conversation_request_human(conversation_id=conversation.pk)
    again = clocks(conversation)
    assert [c.stopped_at for c in again.values()] == [None, None]
    assert again["first_response"].started_at > first_start


def test_the_breach_sweep_marks_an_overdue_clock_exactly_once(default_policy, customer):
    overdue = ConversationFactory(customer=customer)
    on_time = ConversationFactory(customer=customer)
    for conversation in (overdue, on_time):
        conversation_request_human(conversation_id=conversation.pk)
    past = datetime(2025, 1, 8, 10, 0, tzinfo=UTC)
    SlaClock.objects.filter(conversation=overdue, kind="first_response").update(due_at=past)

    assert sla_breaches_check_task() == 1
    assert sla_breaches_check_task() == 0  # a second sweep finds nothing new
    marked = clocks(overdue)["first_response"]
    assert marked.breached_at is not None and marked.stopped_at is None
    assert SlaClock.objects.filter(breached_at__isnull=False).count() == 1


def test_a_stopped_clock_never_breaches(default_policy, customer, agent):
    conversation = ConversationFactory(customer=customer)
    conversation_request_human(conversation_id=conversation.pk)
    console.conversation_claim(conversation_id=conversation.pk, agent=agent)
    console.agent_reply(conversation_id=conversation.pk, agent=agent, client_msg_id=uuid.uuid4(), text="Hi")
    SlaClock.objects.filter(conversation=conversation).update(due_at=datetime(2025, 1, 8, tzinfo=UTC))

    events = sla_breaches_mark()

    assert [(e["conversation_id"], e["kind"]) for e in events] == [(str(conversation.pk), "resolution")]
