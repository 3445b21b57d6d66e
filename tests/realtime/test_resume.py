"""Resume: every durable event after `last_seq` exactly once and in order, then `resumed`,
then the partial answer when one is being generated."""

import uuid

import pytest
from asgiref.sync import sync_to_async

from apps.conversations.events import event_emit
from tests.support.people import token_for
from tests.support.sockets import shown_text

pytestmark = pytest.mark.django_db(transaction=True)


async def converse(socket, n):
    conversation_id = None
    for i in range(n):
        frame = {"type": "message", "client_msg_id": str(uuid.uuid4()), "text": f"question {i}"}
        if conversation_id:
            frame["conversation_id"] = conversation_id
        await socket.send(frame)
        conversation_id = (await socket.recv())["conversation_id"]
        await socket.recv_until("message_end")
    return conversation_id


async def test_resume_replays_after_last_seq_in_order_then_resumed(chat, customer, settings):
    settings.ASSISTANT_TOKEN_DELAY_S = 0
    conversation_id = await converse(await chat(customer), 3)  # seqs 1..9

    fresh = await chat()
    await fresh.auth(await sync_to_async(token_for)(customer))
    await fresh.send({"type": "resume", "conversation_id": conversation_id, "last_seq": 4})
    events = await fresh.recv_until("resumed")

    assert [e["seq"] for e in events[:-1]] == [5, 6, 7, 8, 9]
    assert [e["type"] for e in events[:-1]] == ["message", "message_end", "message", "message", "message_end"]
    assert events[-1] == {"type": "resumed", "conversation_id": conversation_id, "last_seq": 9}
    assert await fresh.nothing(0.3)


async def test_resume_from_zero_and_from_the_end(chat, customer, settings):
    settings.ASSISTANT_TOKEN_DELAY_S = 0
    socket = await chat(customer)
    conversation_id = await converse(socket, 1)

    await socket.send({"type": "resume", "conversation_id": conversation_id, "last_seq": 0})
    events = await socket.recv_until("resumed")
    assert [(e["type"], e.get("seq")) for e in events] == [
        ("message", 1),
        ("message", 2),
        ("message_end", 3),
        ("resumed", None),
    ]
    assert events[-1]["last_seq"] == 3

    await socket.send({"type": "resume", "conversation_id": conversation_id, "last_seq": 3})
    assert await socket.recv() == {"type": "resumed", "conversation_id": conversation_id, "last_seq": 3}


async def test_live_events_after_resume_arrive_once(chat, customer, settings):
    settings.ASSISTANT_TOKEN_DELAY_S = 0
    talker = await chat(customer)
    conversation_id = await converse(talker, 1)
    reader = await chat(customer)  # follows the conversation since `ready`
    await reader.send({"type": "resume", "conversation_id": conversation_id, "last_seq": 0})
    await reader.recv_until("resumed")

    await sync_to_async(event_emit)(
        conversation=conversation_id,
        type="update",
        payload={"kind": "order", "title": "Shipped", "body": "On its way", "data": {}},
    )
    await talker.send({"type": "message", "client_msg_id": str(uuid.uuid4()), "text": "thanks"})
    events = await reader.recv_until("message_end")

    assert [e["seq"] for e in events if "seq" in e] == [4, 5, 6, 7]
    assert events[0] == {
        "type": "update",
        "conversation_id": conversation_id,
        "seq": 4,
        "kind": "order",
        "title": "Shipped",
        "body": "On its way",
        "data": {},
    }


async def test_resume_during_generation_sends_partial_and_the_text_adds_up(chat, customer, settings):
    settings.ASSISTANT_TOKEN_DELAY_S = 0.15
    asker = await chat(customer)
    await asker.send({"type": "message", "client_msg_id": str(uuid.uuid4()), "text": "question"})
    conversation_id = (await asker.recv())["conversation_id"]
    for _ in range(3):
        await asker.recv_until("token")

    other = await chat(customer)
    await other.send({"type": "resume", "conversation_id": conversation_id, "last_seq": 0})
    events = await other.recv_until("resumed")
    assert [(e["type"], e.get("seq")) for e in events] == [("message", 1), ("resumed", None)]
    partial = await other.recv()
    assert partial["type"] == "partial"
    assert partial["text"]  # three tokens at least
    events.append(partial)
    events += await other.recv_until("message_end")

    end = events[-1]
    assert end["stopped"] is False
    assert shown_text(events, end["message_id"]) == end["text"]
    assert [e["seq"] for e in events if "seq" in e] == [1, 2, 3]
