"""Bad frames, limits, and the small frame types (ping, typing, request_human, csat)."""

import json
import uuid

import psycopg
import pytest
from asgiref.sync import sync_to_async
from django.db import OperationalError

from apps.conversations.events import aevent_broadcast
from apps.conversations.models import Conversation, Message
from apps.conversations.services import conversation_close
from apps.realtime import chat_queries
from tests.support.factories import ConversationFactory

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _fast_answers(settings):
    settings.ASSISTANT_TOKEN_DELAY_S = 0


async def start_conversation(socket, text="hello"):
    await socket.send({"type": "message", "client_msg_id": str(uuid.uuid4()), "text": text})
    ack = await socket.recv()
    await socket.recv_until("message_end")
    return ack["conversation_id"]


async def assert_still_open(socket):
    await socket.send({"type": "ping", "ts": "alive"})
    assert await socket.recv() == {"type": "pong", "ts": "alive"}


def error(code, message, **extra):
    return {"type": "error", "code": code, "message": message, **extra}


BAD = {
    "invalid_json": ("{nope", error("bad_json", "The frame is not valid JSON.")),
    "json_array": ("[1]", error("bad_json", "A frame must be a JSON object with a `type`.")),
    "no_type": ('{"token": "x"}', None),
    "unknown_type": ('{"type": "dance"}', None),
}


async def test_invalid_json_is_bad_json_and_the_socket_stays_open(chat, customer):
    socket = await chat(customer)
    for text, expected in [BAD["invalid_json"], BAD["json_array"]]:
        await socket.send_raw(text)
        assert await socket.recv() == expected
    await assert_still_open(socket)


async def test_binary_frame_is_bad_json(chat, customer):
    socket = await chat(customer)
    await socket.send_raw(data=b'{"type": "ping"}')
    assert await socket.recv() == error("bad_json", "Binary frames are not accepted; send JSON text frames.")
    await assert_still_open(socket)


async def test_frame_over_64_kib_is_too_large_and_64_kib_is_fine(chat, customer):
    socket = await chat(customer)
    frame = {"type": "ping", "ts": ""}
    frame["ts"] = "x" * (64 * 1024 - len(json.dumps(frame)))
    await socket.send(frame)
    assert (await socket.recv())["type"] == "pong"

    frame["ts"] += "é"  # one character, two bytes: 64 KiB + 1
    await socket.send(frame)
    assert await socket.recv() == error("too_large", "Frames are limited to 65536 bytes.")
    await assert_still_open(socket)


@pytest.mark.parametrize("frame", [{"token": "x"}, {"type": "dance"}, {"type": 3}])
async def test_unknown_type(chat, customer, frame):
    socket = await chat(customer)
    await socket.send(frame)
    event = await socket.recv()
    assert event["code"] == "unknown_type"
    assert "known types: auth, resume, message, stop, request_human, typing, ping, csat" in event["message"]
    await assert_still_open(socket)


CID = str(uuid.uuid4())


@pytest.mark.parametrize(
    "frame, message",
    [
        (
            {"type": "message", "client_msg_id": CID, "text": ""},
            "`text` must be a string of 1 to 4000 characters, not only spaces.",
        ),
        (
            {"type": "message", "client_msg_id": CID, "text": "x" * 4001},
            "`text` must be a string of 1 to 4000 characters, not only spaces.",
        ),
        (
            {"type": "message", "client_msg_id": CID, "text": "   "},
            "`text` must be a string of 1 to 4000 characters, not only spaces.",
        ),
        (
            {"type": "message", "client_msg_id": CID, "text": 5},
            "`text` must be a string of 1 to 4000 characters, not only spaces.",
        ),
        ({"type": "message", "client_msg_id": CID}, "`message` needs `text`."),
        (
            {"type": "message", "client_msg_id": CID, "text": "hi", "conversation_id": "abc"},
            "`conversation_id` must be a UUID string.",
        ),
        (
            {"type": "message", "client_msg_id": "not-a-uuid", "text": "hi"},
            "`client_msg_id` must be a UUID string.",
        ),
        ({"type": "message", "text": "hi"}, "`message` needs `client_msg_id`."),
        ({"type": "resume", "conversation_id": CID}, "`resume` needs `last_seq`."),
        (
            {"type": "resume", "conversation_id": CID, "last_seq": -1},
            "`last_seq` must be an integer from 0 up.",
        ),
        (
            {"type": "resume", "conversation_id": CID, "last_seq": "3"},
            "`last_seq` must be an integer from 0 up.",
        ),
        (
            {"type": "resume", "conversation_id": CID, "last_seq": True},
            "`last_seq` must be an integer from 0 up.",
        ),
        ({"type": "stop"}, "`stop` needs `conversation_id`."),
        ({"type": "request_human", "conversation_id": 7}, "`conversation_id` must be a UUID string."),
        ({"type": "typing", "conversation_id": CID, "on": "yes"}, "`on` must be true or false."),
        ({"type": "csat", "conversation_id": CID, "score": 6}, "`score` must be an integer from 1 to 5."),
        ({"type": "csat", "conversation_id": CID, "score": 0}, "`score` must be an integer from 1 to 5."),
        (
            {"type": "csat", "conversation_id": CID, "score": 3, "comment": 1},
            "`comment` must be a string of at most 2000 characters.",
        ),
    ],
)
async def test_bad_fields_are_invalid_with_a_message_naming_the_field(chat, customer, frame, message):
    socket = await chat(customer)
    await socket.send(frame)
    event = await socket.recv()
    expected = error("invalid", message)
    if frame["type"] == "message" and isinstance(frame.get("client_msg_id"), str):
        expected["client_msg_id"] = frame["client_msg_id"]
    assert event == expected
    await assert_still_open(socket)
    assert await Message.objects.acount() == 0


async def test_text_of_4000_characters_is_accepted(chat, customer):
    socket = await chat(customer)
    cmid = str(uuid.uuid4())
    await socket.send({"type": "message", "client_msg_id": cmid, "text": "é" * 4000})
    assert (await socket.recv())["type"] == "ack"
    await socket.recv_until("message_end")


async def test_twenty_bad_frames_within_a_minute_close_1008(chat, customer):
    socket = await chat(customer)
    for _ in range(19):
        await socket.send_raw("{")
        assert (await socket.recv())["code"] == "bad_json"
    await assert_still_open(socket)

    await socket.send({"type": "dance"})
    assert (await socket.recv())["code"] == "unknown_type"
    assert await socket.recv() == {"type": "websocket.close", "code": 1008}


async def test_message_flood_is_rate_limited_then_closed_1008_and_keeps_what_was_accepted(chat, customer):
    socket = await chat(customer)
    sent = [str(uuid.uuid4()) for _ in range(40)]
    for cmid in sent:
        await socket.send({"type": "message", "client_msg_id": cmid, "text": f"flood {cmid}"})
    acks, limited = [], []
    while True:
        event = await socket.recv()
        if event["type"] == "ack":
            acks.append(event["client_msg_id"])
        elif event["type"] == "error":
            assert (event["code"], event["message"]) == (
                "rate_limited",
                "Too many frames; wait a few seconds and retry.",
            )
            limited.append(event["client_msg_id"])
        elif event["type"] == "websocket.close":
            assert event["code"] == 1008
            break
    assert acks == sent[:10]
    assert limited == sent[10:30]
    stored = [
        str(m) async for m in Message.objects.filter(role="customer").values_list("client_msg_id", flat=True)
    ]
    assert sorted(stored) == sorted(sent[:10])


async def test_ping_is_answered_with_the_same_ts(chat, customer):
    socket = await chat(customer)
    for ts in [1, "t", {"a": [1, 2]}, None]:
        await socket.send({"type": "ping", "ts": ts})
        assert await socket.recv() == {"type": "pong", "ts": ts}
    await socket.send({"type": "ping"})
    assert await socket.recv() == {"type": "pong", "ts": None}


async def test_others_conversations_are_forbidden_and_the_socket_stays_open(chat, customer, other_customer):
    theirs = str((await sync_to_async(ConversationFactory)(customer=other_customer, last_seq=0)).pk)
    socket = await chat(customer)
    cmid = str(uuid.uuid4())
    frames = [
        {"type": "resume", "conversation_id": theirs, "last_seq": 0},
        {"type": "stop", "conversation_id": theirs},
        {"type": "request_human", "conversation_id": theirs},
        {"type": "typing", "conversation_id": theirs, "on": True},
        {"type": "csat", "conversation_id": theirs, "score": 5},
    ]
    for frame in frames:
        await socket.send(frame)
        assert await socket.recv() == error("forbidden", "This conversation belongs to someone else.")
    await socket.send({"type": "message", "client_msg_id": cmid, "text": "hi", "conversation_id": theirs})
    assert await socket.recv() == error(
        "forbidden", "This conversation belongs to someone else.", client_msg_id=cmid
    )
    await assert_still_open(socket)
    assert await Message.objects.acount() == 0
    assert (await Conversation.objects.aget(pk=theirs)).state == "bot"


async def test_unknown_conversation_is_not_found(chat, customer):
    socket = await chat(customer)
    await socket.send({"type": "resume", "conversation_id": CID, "last_seq": 0})
    assert await socket.recv() == error(
        "not_found", "No conversation has this id; start a new one by sending a message."
    )
    await assert_still_open(socket)


async def test_request_human_moves_to_waiting_and_every_socket_sees_the_handoff(chat, customer):
    first = await chat(customer)
    conversation_id = await start_conversation(first)
    second = await chat(customer)

    await first.send({"type": "request_human", "conversation_id": conversation_id})

    expected = {
        "type": "handoff",
        "conversation_id": conversation_id,
        "seq": 4,
        "state": "waiting",
        "agent": None,
    }
    assert await first.recv() == expected
    assert await second.recv() == expected
    assert (await Conversation.objects.aget(pk=conversation_id)).state == "waiting"

    # No answer is generated any more: the customer's message is echoed and that is all.
    await first.send({"type": "message", "client_msg_id": str(uuid.uuid4()), "text": "still there?"})
    assert (await first.recv())["type"] == "ack"
    assert (await first.recv())["message"]["text"] == "still there?"
    assert await first.nothing(0.5)


async def test_typing_reaches_the_conversation_but_not_the_customers_own_tabs(chat, customer):
    first = await chat(customer)
    conversation_id = await start_conversation(first)
    second = await chat(customer)

    await first.send({"type": "typing", "conversation_id": conversation_id, "on": True})
    assert await first.nothing() and await second.nothing()

    # An agent typing (what the console will send through the event gate) reaches both.
    await aevent_broadcast(
        conversation_id=conversation_id, type="typing", payload={"role": "agent", "on": True}
    )
    expected = {"type": "typing", "conversation_id": conversation_id, "role": "agent", "on": True}
    assert await first.recv() == expected
    assert await second.recv() == expected


async def test_csat_is_stored_after_the_conversation_closes(chat, customer):
    socket = await chat(customer)
    conversation_id = await start_conversation(socket)

    await socket.send({"type": "csat", "conversation_id": conversation_id, "score": 5})
    assert await socket.recv() == error(
        "conflict", "Ratings are asked for when a conversation closes; this one is still open."
    )

    await sync_to_async(conversation_close)(conversation_id=conversation_id)
    assert await socket.recv() == {
        "type": "csat_request",
        "conversation_id": conversation_id,
        "seq": 4,
        "question": "How did we do? Rate this conversation from 1 to 5.",
    }
    await socket.send({"type": "csat", "conversation_id": conversation_id, "score": 4, "comment": "quick"})
    await assert_still_open(socket)
    conversation = await Conversation.objects.aget(pk=conversation_id)
    assert (conversation.csat_score, conversation.csat_comment) == (4, "quick")


async def test_stop_without_an_answer_in_progress_does_nothing(chat, customer):
    socket = await chat(customer)
    conversation_id = await start_conversation(socket)
    await socket.send({"type": "stop", "conversation_id": conversation_id})
    assert await socket.nothing(0.5)
    await assert_still_open(socket)


@pytest.mark.parametrize(
    ("failure", "code", "message"),
    [
        (OperationalError("connection refused"), "unavailable",
         "We can't reach our storage right now; retry in a few seconds."),
        (RuntimeError("a bug"), "internal", "Something went wrong on our side; please retry."),
    ],
)
async def test_a_failing_service_is_an_error_event_and_a_retry_is_stored_once(
    chat, customer, monkeypatch, failure, code, message
):
    socket = await chat(customer)
    frame = {"type": "message", "client_msg_id": str(uuid.uuid4()), "text": "hello"}

    def broken(**kwargs):
        raise failure

    async def loop_connection_down(*args):
        raise psycopg.OperationalError("connection refused")

    with monkeypatch.context() as patch:
        # The event loop's connection fails, then the database thread's: the storage is down.
        patch.setattr(chat_queries, "loop_fetchone", loop_connection_down)
        patch.setattr(chat_queries, "message_receive_deferred", broken)
        await socket.send(frame)
        assert await socket.recv() == error(code, message, client_msg_id=frame["client_msg_id"])

    await assert_still_open(socket)
    await socket.send(frame)  # the client retries the same message once the service is back
    assert (await socket.recv())["type"] == "ack"
    assert await Message.objects.filter(client_msg_id=frame["client_msg_id"]).acount() == 1


async def test_a_message_stored_just_before_the_loop_connection_failed_is_acked_once(
    chat, customer, monkeypatch
):
    # The statement committed, then the connection broke before its row came back: the database
    # thread stores nothing more and acks the stored message (found as a retry).
    real = chat_queries.loop_fetchone

    async def broke_after_the_commit(sql, params):
        await real(sql, params)
        raise psycopg.OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(chat_queries, "loop_fetchone", broke_after_the_commit)
    socket = await chat(customer)
    frame = {"type": "message", "client_msg_id": str(uuid.uuid4()), "text": "hello"}
    await socket.send(frame)
    ack = await socket.recv()

    stored = [m async for m in Message.objects.filter(client_msg_id=frame["client_msg_id"])]
    assert ack["type"] == "ack"
    assert [str(m.id) for m in stored] == [ack["message_id"]]
    # Its `message` event (caught up from Postgres) and its answer (the turn it stored) still come.
    events = await socket.recv_until("message_end")
    assert [e["message"]["id"] for e in events if e["type"] == "message"][0] == ack["message_id"]


async def test_frames_and_events_reach_handlers_without_a_trip_to_the_shared_db_thread(
    chat, customer, monkeypatch
):
    # Channels' dispatch awaits aclose_old_connections() (asgiref's one thread-sensitive thread)
    # before every handler; the socket runtime dispatches directly (its DB calls close their own).
    import channels.consumer

    trips = []

    async def counted() -> None:
        trips.append(1)

    monkeypatch.setattr(channels.consumer, "aclose_old_connections", counted)
    socket = await chat(customer)
    await socket.send({"type": "message", "client_msg_id": str(uuid.uuid4()), "text": "Hello"})
    ack = (await socket.recv_until("ack"))[-1]
    streamed = await socket.recv_until("message_end", conversation_id=ack["conversation_id"])
    await socket.send({"type": "ping", "ts": "after"})
    assert (await socket.recv_until("pong"))[-1]["ts"] == "after"
    # The customer's message, the answer's tokens, its message and message_end all went through
    # the consumer's handlers, and none of them first hopped to the shared thread.
    assert [e["type"] for e in streamed][-2:] == ["message", "message_end"]
    assert trips == []
