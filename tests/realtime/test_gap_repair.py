"""A socket that missed a durable event (a dropped broadcast) gets it from Postgres: at its next
`ping`, or from the per-process check every half heartbeat — without a query when nothing moved."""

import uuid

import pytest
from asgiref.sync import sync_to_async

from apps.conversations.events import _SEQ_MAX, SEQ_TTL_S, broadcasts_deferred, event_emit, seq_key
from apps.core.redis import redis_async

pytestmark = pytest.mark.django_db(transaction=True)


def _lost_update(conversation_id: str) -> int:
    """Store an `update` whose broadcast is lost (collected, never sent)."""
    with broadcasts_deferred():
        event = event_emit(conversation=conversation_id, type="update",
                           payload={"kind": "order", "title": "Shipped", "body": "PP-1", "data": {}})
    return event.seq


async def _ask(socket) -> str:
    await socket.send({"type": "message", "client_msg_id": str(uuid.uuid4()), "text": "hi"})
    events = await socket.recv_until("message_end")
    return events[0]["conversation_id"]


async def test_a_lost_broadcast_is_delivered_at_the_next_ping(chat, customer, settings):
    settings.ASSISTANT_TOKEN_DELAY_S = 0
    socket = await chat(customer)
    conversation_id = await _ask(socket)
    seq = await sync_to_async(_lost_update)(conversation_id)
    # What the gate does on commit besides the broadcast: the conversation's newest seq in Redis.
    await redis_async().eval(_SEQ_MAX, 1, seq_key(conversation_id), seq, SEQ_TTL_S)
    assert await socket.nothing(0.3)  # the broadcast was lost

    await socket.send({"type": "ping", "ts": 7})
    assert await socket.recv() == {"type": "pong", "ts": 7}
    update = await socket.recv()
    assert (update["type"], update["seq"], update["title"]) == ("update", seq, "Shipped")


async def test_a_lost_broadcast_is_delivered_within_a_heartbeat_without_a_ping(chat, customer, settings):
    settings.ASSISTANT_TOKEN_DELAY_S = 0
    settings.CHAT_HEARTBEAT_S = 2  # the check runs every half heartbeat
    socket = await chat(customer)
    conversation_id = await _ask(socket)
    seq = await sync_to_async(_lost_update)(conversation_id)
    await redis_async().eval(_SEQ_MAX, 1, seq_key(conversation_id), seq, SEQ_TTL_S)

    update = await socket.recv(timeout=10)
    assert (update["type"], update["seq"]) == ("update", seq)


async def test_a_ping_with_nothing_missed_reads_nothing_from_postgres(chat, customer, settings, monkeypatch):
    from apps.realtime import runtime

    fetches = []
    real_fetch = runtime._fetch_events

    async def counted(conversation_id, after_seq, upto_seq, limit):
        fetches.append((conversation_id, after_seq))
        return await real_fetch(conversation_id, after_seq, upto_seq, limit)

    monkeypatch.setattr(runtime, "_fetch_events", counted)
    settings.ASSISTANT_TOKEN_DELAY_S = 0
    socket = await chat(customer)
    await _ask(socket)
    before = len(fetches)
    for ts in range(5):
        await socket.send({"type": "ping", "ts": ts})
        assert await socket.recv() == {"type": "pong", "ts": ts}
    assert await socket.nothing(0.3)
    assert len(fetches) == before
