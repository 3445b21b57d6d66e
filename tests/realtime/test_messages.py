"""Customer messages: ack, echo to every socket, idempotent retries, the streamed answer, stop."""

import uuid

import pytest

from apps.assistant.providers.builtin import DONT_KNOW
from apps.conversations.models import ConversationEvent, Message
from tests.support.sockets import shown_text

pytestmark = pytest.mark.django_db(transaction=True)


async def test_message_is_acked_echoed_with_the_ack_seq_and_answered(chat, customer, settings):
    settings.ASSISTANT_TOKEN_DELAY_S = 0
    socket = await chat(customer)
    cmid = str(uuid.uuid4())
    await socket.send({"type": "message", "client_msg_id": cmid, "text": "Can I pay in bitcoin?"})

    events = await socket.recv_until("message_end")

    ack, echo = events[0], events[1]
    message = await Message.objects.aget(client_msg_id=cmid)
    conversation_id = str(message.conversation_id)
    assert ack == {
        "type": "ack",
        "client_msg_id": cmid,
        "conversation_id": conversation_id,
        "message_id": str(message.id),
        "seq": 1,
    }
    assert echo == {
        "type": "message",
        "conversation_id": conversation_id,
        "seq": 1,
        "message": {
            "id": str(message.id),
            "role": "customer",
            "text": "Can I pay in bitcoin?",
            "created_at": message.created_at.isoformat(),
            "citations": [],
            "author": None,
        },
    }

    tokens = [e for e in events if e["type"] == "token"]
    answer_id = tokens[0]["message_id"]
    assert [e["type"] for e in events[2:]] == ["token"] * len(tokens) + ["message", "message_end"]
    assert "".join(t["text"] for t in tokens) == DONT_KNOW
    answer = await Message.objects.aget(pk=answer_id)
    assert events[-2] == {
        "type": "message",
        "conversation_id": conversation_id,
        "seq": 2,
        "message": {
            "id": answer_id,
            "role": "assistant",
            "text": DONT_KNOW,
            "created_at": answer.created_at.isoformat(),
            "citations": [],
            "author": None,
        },
    }
    assert events[-1] == {
        "type": "message_end",
        "conversation_id": conversation_id,
        "seq": 3,
        "message_id": answer_id,
        "text": DONT_KNOW,
        "citations": [],
        "stopped": False,
        "outcome": "declined",
        "suggestions": [],
    }


async def test_every_socket_of_the_conversation_gets_the_message_once(chat, customer, settings):
    settings.ASSISTANT_TOKEN_DELAY_S = 0
    first = await chat(customer)
    await first.send({"type": "message", "client_msg_id": str(uuid.uuid4()), "text": "one"})
    conversation_id = (await first.recv())["conversation_id"]
    await first.recv_until("message_end")
    second = await chat(customer)  # follows the open conversation from `ready`

    cmid = str(uuid.uuid4())
    await second.send({"type": "message", "client_msg_id": cmid, "text": "two"})

    on_second = await second.recv_until("message_end")
    on_first = await first.recv_until("message_end")
    assert on_second[0]["type"] == "ack"
    durable = [
        [(e["type"], e["seq"]) for e in events if "seq" in e and e["type"] != "ack"]
        for events in (on_first, on_second[1:])
    ]
    assert durable[0] == durable[1] == [("message", 4), ("message", 5), ("message_end", 6)]
    assert on_first[0]["message"]["text"] == "two"
    assert all(e["conversation_id"] == conversation_id for e in on_first)


async def test_retried_message_is_stored_once_and_gets_the_same_ack(chat, customer, settings):
    settings.ASSISTANT_TOKEN_DELAY_S = 0
    first = await chat(customer)
    cmid = str(uuid.uuid4())
    frame = {"type": "message", "client_msg_id": cmid, "text": "refund please"}
    await first.send(frame)
    ack = await first.recv()
    await first.recv_until("message_end")

    await first.send(frame)  # same socket
    assert await first.recv() == ack
    await first.close()

    again = await chat(customer)  # after a reconnect, with the conversation named
    await again.send({**frame, "conversation_id": ack["conversation_id"]})
    assert await again.recv() == ack
    assert await again.nothing(0.5)  # no second answer either

    assert await Message.objects.filter(client_msg_id=cmid).acount() == 1
    assert await Message.objects.filter(role="assistant").acount() == 1
    assert await ConversationEvent.objects.acount() == 3


async def test_stop_ends_the_answer_with_the_text_so_far(chat, customer, settings):
    settings.ASSISTANT_TOKEN_DELAY_S = 0.5
    socket = await chat(customer)
    await socket.send({"type": "message", "client_msg_id": str(uuid.uuid4()), "text": "tell me everything"})
    events = await socket.recv_until("token")
    conversation_id = events[0]["conversation_id"]

    await socket.send({"type": "stop", "conversation_id": conversation_id})
    events += await socket.recv_until("message_end")

    end = events[-1]
    assert end["stopped"] is True
    assert end["text"] == shown_text(events, end["message_id"])
    assert 0 < len(end["text"]) < len(DONT_KNOW)
    stored = await Message.objects.aget(pk=end["message_id"])
    assert (stored.text, stored.stopped) == (end["text"], True)
    assert events[-2]["message"]["text"] == end["text"]


async def test_message_sent_while_an_answer_streams_gets_its_own_answer_next(chat, customer, settings):
    settings.ASSISTANT_TOKEN_DELAY_S = 0.02
    socket = await chat(customer)
    await socket.send({"type": "message", "client_msg_id": str(uuid.uuid4()), "text": "first question"})
    await socket.recv_until("token")
    await socket.send({"type": "message", "client_msg_id": str(uuid.uuid4()), "text": "second question"})

    events = await socket.recv_until("message_end")
    events += await socket.recv_until("message_end")

    ends = [e for e in events if e["type"] == "message_end"]
    assert [e["stopped"] for e in ends] == [False, False]
    assert ends[0]["message_id"] != ends[1]["message_id"]
    assert await Message.objects.filter(role="assistant").acount() == 2


async def test_an_answer_begun_before_the_new_conversation_is_followed_arrives_as_a_partial(
    chat, customer, settings, monkeypatch
):
    """The socket follows a conversation its message started only after the ack. Should a sweep
    begin the answer before that (another process, after SWEEP_GRACE_S), the socket gets the
    text so far as a `partial`, then the rest: the widget shows the whole answer."""
    import asyncio

    from apps.assistant import turn_store
    from apps.assistant.turns import turn_partial
    from apps.conversations.models import Conversation
    from apps.realtime import consumers

    settings.ASSISTANT_TOKEN_DELAY_S = 0.05
    monkeypatch.setattr(turn_store, "SWEEP_GRACE_S", 0)  # the sweep takes the fresh turn at once

    async def late_follow(max_wait_s):  # the socket's work after its ack, delayed until the answer streams
        for _ in range(200):
            conversation = await Conversation.objects.filter(customer=customer).afirst()
            partial = conversation and await turn_partial(conversation_id=conversation.pk)
            if partial and partial[1]:
                return
            await asyncio.sleep(0.05)
        raise AssertionError("no sweep began the answer")

    monkeypatch.setattr(consumers, "acks_settled", late_follow)
    socket = await chat(customer)
    frame = {"type": "message", "client_msg_id": str(uuid.uuid4()), "text": "Can I pay in bitcoin?"}
    await socket.send(frame)

    events = await socket.recv_until("message_end")

    end = events[-1]
    answer = [e for e in events if e.get("message_id") == end["message_id"] and e["type"] != "message_end"]
    assert answer[0]["type"] == "partial" and answer[0]["text"]  # the beginning it missed
    assert shown_text(events, end["message_id"]) == end["text"] == DONT_KNOW
    assert [(e["type"], e["seq"]) for e in events if "seq" in e] == [
        ("ack", 1), ("message", 1), ("message", 2), ("message_end", 3)
    ]


async def test_an_event_committed_before_the_new_conversation_is_followed_still_arrives_in_order(
    chat, customer, settings, monkeypatch
):
    """The socket learns what a conversation its message began holds from Redis (its seq mark)
    rather than Postgres. An event someone else committed and broadcast before the socket
    joined the conversation's group (an order update, an agent) moved that mark: the socket
    fetches it from Postgres and the customer sees every event once, in order."""
    from asgiref.sync import sync_to_async

    from apps.conversations.events import event_emit
    from apps.conversations.models import Conversation
    from apps.realtime import consumers

    settings.ASSISTANT_TOKEN_DELAY_S = 0
    emitted = []

    async def update_before_follow(max_wait_s):
        if not emitted:
            conversation = await Conversation.objects.filter(customer=customer).afirst()
            event = await sync_to_async(event_emit)(
                conversation=conversation.pk, type="update",
                payload={"kind": "order", "title": "Shipped", "body": "PP-1", "data": {}},
            )  # broadcast on commit, to a group this socket has not joined yet
            emitted.append(event.seq)

    monkeypatch.setattr(consumers, "acks_settled", update_before_follow)
    socket = await chat(customer)
    await socket.send({"type": "message", "client_msg_id": str(uuid.uuid4()), "text": "Can I pay in bitcoin"})

    events = await socket.recv_until("message_end")

    assert emitted == [2]
    assert [(e["type"], e["seq"]) for e in events if "seq" in e] == [
        ("ack", 1), ("message", 1), ("update", 2), ("message", 3), ("message_end", 4)
    ]
    # At once, not only when the answer's stored message reveals the gap at its end.
    assert [e["type"] for e in events][:3] == ["ack", "message", "update"]
    assert await socket.nothing(0.3)


async def test_a_message_that_begins_a_conversation_reads_nothing_back_from_postgres(
    chat, customer, settings, monkeypatch
):
    """Nothing can precede a conversation's first message: the socket that sent it follows the
    conversation without reading its events back (each would cost a database round trip per
    new conversation); its own message and the answer arrive live."""
    from apps.realtime import runtime

    settings.ASSISTANT_TOKEN_DELAY_S = 0
    fetches = []
    real_fetch = runtime._fetch_events

    async def counting_fetch(*args, **kwargs):
        fetches.append(args)
        return await real_fetch(*args, **kwargs)

    monkeypatch.setattr(runtime, "_fetch_events", counting_fetch)
    socket = await chat(customer)
    await socket.send({"type": "message", "client_msg_id": str(uuid.uuid4()), "text": "Can I pay in bitcoin"})

    events = await socket.recv_until("message_end")

    assert [(e["type"], e["seq"]) for e in events if "seq" in e] == [
        ("ack", 1), ("message", 1), ("message", 2), ("message_end", 3)
    ]
    assert fetches == []
