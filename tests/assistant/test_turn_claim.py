"""Claiming a turn reads what its answer needs in the same statement: the same question, history
and customer as `turn_context` reads on its own, whichever message made the answer due."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from apps.assistant import turn_store
from apps.assistant.turns import _claim_next
from apps.conversations.models import ConversationState, MessageRole
from apps.conversations.services import message_create
from apps.realtime.chat_queries import message_receive_deferred
from tests.support.factories import CustomerFactory

pytestmark = pytest.mark.django_db

OWNER = "claim-test"


def _ask(customer, text: str, conversation_id=None):
    receipt, _ = message_receive_deferred(
        customer_id=customer.pk, client_msg_id=uuid.uuid4(), text=text, conversation_id=conversation_id
    )
    return receipt.conversation


def _claim_and_read(conversation) -> tuple[turn_store.ClaimedTurn, turn_store.Turn | None]:
    claimed = turn_store.turn_claim(owner=OWNER, conversation_id=conversation.pk)
    assert claimed is not None
    return claimed, turn_store.turn_context(turn_id=claimed.id)


def test_the_claim_reads_the_question_and_the_history_before_it():
    customer = CustomerFactory(external_id=f"claim-{uuid.uuid4().hex[:6]}", email="c@example.com")
    conversation = _ask(customer, "Where is my order?")
    first = turn_store.turn_claim(owner=OWNER, conversation_id=conversation.pk)
    turn_store.turn_finish(turn_id=first.id, owner=OWNER, text="It shipped [1].", citations=[], stopped=False)
    _ask(customer, "And when does it arrive?", conversation_id=conversation.pk)

    claimed, expected = _claim_and_read(conversation)

    assert claimed.turn == expected
    assert claimed.turn.question == "And when does it arrive?"
    assert claimed.turn.history == [{"role": "customer", "text": "Where is my order?"},
                                    {"role": "assistant", "text": "It shipped [1]."}]
    assert claimed.customer.pk == customer.pk and claimed.customer.email == "c@example.com"


def test_a_question_older_than_the_history_window_is_still_the_one_answered():
    customer = CustomerFactory(external_id=f"claim-{uuid.uuid4().hex[:6]}")
    conversation = _ask(customer, "The first question")
    later = timezone.now() + timedelta(seconds=1)
    for i in range(turn_store.HISTORY_LIMIT + 3):  # agent replies after it push it out of the window
        message_create(conversation=conversation, role=MessageRole.AGENT, text=f"reply {i}",
                       created_at=later + timedelta(milliseconds=i))

    claimed, expected = _claim_and_read(conversation)

    assert claimed.turn == expected
    assert claimed.turn.question == "The first question"
    assert len(claimed.turn.history) == turn_store.HISTORY_LIMIT
    assert claimed.turn.history[-1]["text"] == f"reply {turn_store.HISTORY_LIMIT + 2}"


def test_a_turn_without_a_trigger_answers_the_last_customer_message():
    customer = CustomerFactory(external_id=f"claim-{uuid.uuid4().hex[:6]}")
    conversation = _ask(customer, "Refund my order PP-1001")
    first = turn_store.turn_claim(owner=OWNER, conversation_id=conversation.pk)
    turn_store.turn_finish(turn_id=first.id, owner=OWNER, text="Shall I?", citations=[], stopped=False)
    turn_store.turn_create(conversation_id=conversation.pk)  # a tool's approval makes one like this

    claimed, expected = _claim_and_read(conversation)

    assert claimed.turn == expected
    assert claimed.turn.question == "Refund my order PP-1001"


def test_a_conversation_with_an_agent_claims_its_turn_but_stays_silent():
    customer = CustomerFactory(external_id=f"claim-{uuid.uuid4().hex[:6]}")
    conversation = _ask(customer, "Hello?")
    type(conversation).objects.filter(pk=conversation.pk).update(state=ConversationState.HUMAN)

    claimed, expected = _claim_and_read(conversation)

    assert claimed.turn is None and expected is None
    assert claimed.customer.pk == customer.pk


def test_claiming_and_reading_an_answer_and_its_tools_is_three_statements_on_one_trip(settings):
    customer = CustomerFactory(external_id=f"claim-{uuid.uuid4().hex[:6]}")
    conversation = _ask(customer, "Where is my order?")
    other = _ask(CustomerFactory(), "Hello?")

    with CaptureQueriesContext(connection) as queries:
        claim = _claim_next(owner=OWNER, conversation_id=str(conversation.pk))
    settings.RATELIMIT_ANSWER_CUSTOMER_HOUR = ""  # switched off: nothing to count
    with CaptureQueriesContext(connection) as unlimited:
        _claim_next(owner=OWNER, conversation_id=str(other.pk))

    assert claim.context().question == "Where is my order?"
    # The claim with its reads, the answers-per-hour count, the enabled tools.
    assert len(queries.captured_queries) == 3
    assert len(unlimited.captured_queries) == 2


def _answered(claimed: turn_store.ClaimedTurn) -> None:
    turn_store.turn_finish(turn_id=claimed.id, owner=OWNER, text="Done.", citations=[], stopped=False)


def test_the_claim_counts_the_customers_answers_per_hour(settings):
    settings.RATELIMIT_ANSWER_CUSTOMER_HOUR = "2/hour"
    customer, other = CustomerFactory(), CustomerFactory()
    conversation = _ask(customer, "one")
    claims = []
    for text in ("two", "three"):
        claims.append(turn_store.turn_claim(owner=OWNER, conversation_id=conversation.pk))
        _answered(claims[-1])
        _ask(customer, text, conversation_id=conversation.pk)
    claims.append(turn_store.turn_claim(owner=OWNER, conversation_id=conversation.pk))
    elsewhere = turn_store.turn_claim(owner=OWNER, conversation_id=_ask(other, "hi").pk)

    assert [claim.over_limit for claim in claims] == [False, False, True]
    assert elsewhere.over_limit is False  # per customer
    customer.refresh_from_db()
    assert len(customer.answer_hits) == 2  # the declined answer is not counted


def test_a_taken_over_or_stopped_turn_is_not_counted_again(settings):
    settings.RATELIMIT_ANSWER_CUSTOMER_HOUR = "1/hour"
    customer = CustomerFactory()
    conversation = _ask(customer, "one")
    first = turn_store.turn_claim(owner=OWNER, conversation_id=conversation.pk)
    # Its runner died: the lease lapses and another runner takes the same answer over.
    lapsed = timezone.now() - timedelta(seconds=1)
    turn_store.AssistantTurn.objects.filter(pk=first.id).update(lease_until=lapsed)
    again = turn_store.turn_claim(owner="another", conversation_id=conversation.pk)
    turn_store.turn_finish(turn_id=again.id, owner="another", text="Done.", citations=[], stopped=False)
    _ask(customer, "two", conversation_id=conversation.pk)
    turn_store.turns_stop(conversation_id=conversation.pk)
    stopped = turn_store.turn_claim(owner=OWNER, conversation_id=conversation.pk)

    assert (first.over_limit, again.attempts, again.over_limit) == (False, 2, False)
    assert (stopped.stop_requested, stopped.over_limit) == (True, False)
    customer.refresh_from_db()
    assert len(customer.answer_hits) == 1


def test_the_answer_limit_holds_while_redis_is_unreachable(settings):
    # Counted on the customer's row in Postgres: no per-process fallback that would admit
    # WEB_CONCURRENCY x the limit during a Redis outage.
    from apps.devstack.embedded.ports import free_port

    settings.REDIS_URL = f"redis://127.0.0.1:{free_port()}/0"
    settings.RATELIMIT_ANSWER_CUSTOMER_HOUR = "1/hour"
    customer = CustomerFactory()
    conversation = _ask(customer, "one")
    first = turn_store.turn_claim(owner=OWNER, conversation_id=conversation.pk)
    _answered(first)
    _ask(customer, "two", conversation_id=conversation.pk)
    second = turn_store.turn_claim(owner=OWNER, conversation_id=conversation.pk)

    assert (first.over_limit, second.over_limit) == (False, True)
