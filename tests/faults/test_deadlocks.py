"""One lock order (apps/conversations/locking.py): agents claiming, assigning, releasing and
closing, customers stopping and writing, CRM webhook updates and tool calls, all at once against
an answer being stored, never deadlock. Threads call the services against the real Postgres;
Postgres's own deadlock counter for the test database is the check."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.db import connection, connections

from apps.assistant import turn_store
from apps.assistant.models import AssistantTurn, TurnState
from apps.connectors.models import ToolCall, ToolCallStatus
from apps.connectors.services import tool_call_give_up
from apps.console import services as console
from apps.conversations.errors import ConversationConflict
from apps.conversations.models import Conversation, ConversationEvent, ConversationState, Message
from apps.conversations.services import conversation_request_human
from apps.realtime.chat_queries import message_receive_deferred
from apps.webhooks.models import WebhookEvent, WebhookEventStatus
from apps.webhooks.services import webhook_event_process, webhook_source_demo_ensure
from tests.support.factories import CustomerFactory

pytestmark = pytest.mark.django_db(transaction=True)

ROUNDS = 30
OWNER = "lock-order-test-runner"


def _deadlocks() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_stat_clear_snapshot()")
        cursor.execute("SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()")
        return cursor.fetchone()[0]


def _staff(username: str, *, lead: bool = False) -> Any:
    make = get_user_model().objects.create_superuser if lead else get_user_model().objects.create_user
    return make(username=username, email=username, password="pw", is_staff=True)


def _round(source: Any, number: int) -> dict[str, Any]:
    """A customer whose question's answer is being generated (a running turn holding a running
    tool call), with a CRM event about them waiting to be processed."""
    customer = CustomerFactory(external_id=f"lock-{number}-{uuid.uuid4().hex[:6]}")
    receipt, _ = message_receive_deferred(customer_id=customer.pk, client_msg_id=uuid.uuid4(), text="hi")
    claimed = turn_store.turn_claim(owner=OWNER, conversation_id=receipt.conversation.pk)
    assert claimed is not None
    call = ToolCall.objects.create(
        conversation_id=receipt.conversation.pk, turn_id=claimed.id, name="order_status",
        idempotency_key=f"lock-{uuid.uuid4()}", status=ToolCallStatus.RUNNING,
    )
    event = WebhookEvent.objects.create(
        source=source, webhook_id=uuid.uuid4().hex, type="order.shipped",
        data={"customer": {"external_id": customer.external_id}, "order": {"id": "PP-1"}},
    )
    return {"customer": customer, "conversation_id": receipt.conversation.pk, "turn": claimed,
            "call_id": call.pk, "event_id": event.pk}


def _ops(r: dict[str, Any], agent: Any, other: Any, lead: Any, number: int) -> list[Callable[[], Any]]:
    conversation_id = r["conversation_id"]
    ops: list[Callable[[], Any]] = [
        lambda: turn_store.turn_finish(
            turn_id=r["turn"].id, owner=OWNER, text="Here is your answer.", citations=[], stopped=False
        ),
        lambda: console.conversation_claim(conversation_id=conversation_id, agent=agent),
        lambda: console.conversation_assign(conversation_id=conversation_id, agent_id=other.pk, by=lead),
        lambda: console.conversation_release(conversation_id=conversation_id, agent=lead),
        lambda: turn_store.turns_stop(conversation_id=conversation_id),  # the customer's `stop`
        lambda: webhook_event_process(event_id=r["event_id"]),
        lambda: tool_call_give_up(call_id=r["call_id"], reason="the answer stopped waiting"),
        lambda: message_receive_deferred(
            customer_id=r["customer"].pk, client_msg_id=uuid.uuid4(), text="are you there?"
        ),
        lambda: conversation_request_human(conversation_id=conversation_id),
    ]
    if number % 3 == 0:  # closing ends the others' changes early: only in some rounds
        ops.append(lambda: console.conversation_close(conversation_id=conversation_id, agent=lead))
    return ops


def _run_together(pool: ThreadPoolExecutor, ops: list[Callable[[], Any]]) -> list[BaseException]:
    start = threading.Barrier(len(ops))
    errors: list[BaseException] = []

    def run(op: Callable[[], Any]) -> None:
        start.wait(10)
        try:
            op()
        except ConversationConflict:
            pass  # a lost race an agent sees as `conflict`: a valid outcome
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            errors.append(exc)

    for future in [pool.submit(run, op) for op in ops]:
        future.result(60)
    return errors


def _assert_valid(r: dict[str, Any]) -> None:
    turn = AssistantTurn.objects.get(pk=r["turn"].id)
    assert turn.state == TurnState.DONE
    answer = Message.objects.get(pk=turn.message_id)
    end = ConversationEvent.objects.get(conversation_id=r["conversation_id"], type="message_end",
                                        payload__message_id=str(answer.pk))
    assert end.seq == answer.seq + 1
    for conversation in Conversation.objects.filter(customer=r["customer"]):
        events = list(ConversationEvent.objects.filter(conversation=conversation).order_by("seq"))
        assert [e.seq for e in events] == list(range(1, conversation.last_seq + 1))  # gap-free
        handoffs = [e.payload["state"] for e in events if e.type == "handoff"]
        closed = any(e.type == "csat_request" for e in events)
        assert (conversation.state == ConversationState.CLOSED) == closed
        if conversation.state == ConversationState.HUMAN:
            assert conversation.assignee_id is not None and handoffs[-1] == "human"
        elif conversation.state == ConversationState.WAITING:
            assert handoffs[-1] == "waiting"
        elif conversation.state == ConversationState.BOT:
            assert not handoffs or handoffs[-1] == "bot"
    assert WebhookEvent.objects.get(pk=r["event_id"]).status == WebhookEventStatus.PROCESSED
    assert ToolCall.objects.get(pk=r["call_id"]).status == ToolCallStatus.FAILED


def test_agents_customers_webhooks_and_tool_calls_against_answers_being_stored_never_deadlock():
    source = webhook_source_demo_ensure()
    agent, other = _staff("alice@example.com"), _staff("bob@example.com")
    lead = _staff("sue@example.com", lead=True)
    before = _deadlocks()
    errors: list[BaseException] = []
    rounds = []
    with ThreadPoolExecutor(max_workers=10) as pool:
        for number in range(ROUNDS):
            r = _round(source, number)
            errors += _run_together(pool, _ops(r, agent, other, lead, number))
            rounds.append(r)
        # Each worker closes its connection: a backend's counters reach pg_stat_database when it exits.
        done = threading.Barrier(10)
        for future in [pool.submit(lambda: (done.wait(10), connections.close_all())) for _ in range(10)]:
            future.result(30)
    time.sleep(1.0)
    deadlocks = _deadlocks() - before
    assert deadlocks == 0, f"Postgres detected {deadlocks} deadlock(s); errors: {errors[:3]}"
    assert errors == []
    for r in rounds:
        _assert_valid(r)
