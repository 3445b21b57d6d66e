"""Process faults, on real uvicorn servers and real `websockets` customers: a web process killed
while it streams an answer or while it acks, a customer stalled on a row lock, a burst of 200."""

import asyncio
import threading
import uuid

import pytest
from asgiref.sync import sync_to_async
from django.db import connections

from apps.conversations.models import Message
from tests.support.fake_llm import FakeLLM
from tests.support.sockets import Customer, answer_of, shown_text, widget_session

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


async def events_within(customer: Customer, seconds: float) -> list[dict]:
    """Whatever else arrives within `seconds` (pongs and typing aside)."""
    seen = []
    try:
        while True:
            seen.append(await customer.recv(timeout=seconds))
    except TimeoutError:
        return seen


def durable(events):
    return [(e["type"], e["seq"]) for e in events if "seq" in e and e["type"] != "ack"]


@pytest.fixture(params=["builtin", "openai"])
def provider_env(request):
    """The same guarantees whichever provider answers: `builtin`, or `openai` against a real
    loopback server speaking the Chat Completions API (a slow model: 0.2 s per word)."""
    if request.param == "builtin":
        yield {"LLM_PROVIDER": "builtin", "ASSISTANT_TOKEN_DELAY_S": "0.3"}
        return
    with FakeLLM() as llm:
        llm.deltas = [f"word{i} " for i in range(30)]
        llm.delay_s = 0.2
        yield {"LLM_PROVIDER": "openai", "LLM_BASE_URL": llm.url, "LLM_MODEL": "fake-model"}


async def test_killed_web_process_mid_answer_another_process_completes_it_once(web_server, provider_env):
    a = web_server(ASSISTANT_TOKEN_FLUSH_S="0", **provider_env)
    b = web_server(**{**provider_env, "ASSISTANT_TOKEN_DELAY_S": "0.01"})
    token = (await widget_session(a.http_url))["token"]
    first = Customer(a.ws_url, token)
    await first.connect()
    await first.send({"type": "message", "client_msg_id": str(uuid.uuid4()), "text": "a question"})
    seen = await first.recv_until("token")
    seen += await first.recv_until("token")
    a.kill()  # kill -9 while it streams: its lease lapses and b takes the turn over
    conversation_id = seen[0]["conversation_id"]
    assert durable(seen) == [("message", 1)]

    again = Customer(b.ws_url, token)
    await again.connect()
    await again.send({"type": "resume", "conversation_id": conversation_id, "last_seq": 1})
    after = await answer_of(again)
    after += await events_within(again, 2)  # a second message (or message_end) would be a duplicate

    assert durable(after) == [("message", 2), ("message_end", 3)]
    end = after[-1]
    assert end["stopped"] is False
    assert end["message_id"] == seen[-1]["message_id"]  # the same answer, completed elsewhere
    assert shown_text(after, end["message_id"]) == end["text"]
    assert await Message.objects.filter(role="assistant").acount() == 1
    stored = await Message.objects.aget(role="assistant")
    assert stored.text == end["text"] and str(stored.pk) == end["message_id"]
    await again.close()


def _hold_customer_lock(customer_id: str, locked: threading.Event, release: threading.Event) -> None:
    """A slow transaction elsewhere: it holds the customer's row until told to let go."""
    with connections["default"].cursor() as cursor:
        cursor.execute("BEGIN")
        cursor.execute("SELECT 1 FROM customers_customer WHERE id = %s FOR UPDATE", [customer_id])
        locked.set()
        release.wait(60)
        cursor.execute("COMMIT")
    connections["default"].close()


async def _statement_waits_on_a_lock(statement: str, timeout_s: float = 10) -> bool:
    """Whether a backend running `statement` is seen waiting on a lock within `timeout_s`."""

    def waiting() -> bool:
        with connections["default"].cursor() as cursor:
            cursor.execute(
                "SELECT 1 FROM pg_stat_activity WHERE datname = current_database()"
                " AND wait_event_type = 'Lock' AND query LIKE %s",
                [f"%{statement}%"],
            )
            return cursor.fetchone() is not None

    return await _eventually(lambda: sync_to_async(waiting)(), True, timeout_s)


async def _eventually(read, expected, timeout_s: float = 10):
    """`await read()` until it equals `expected` (True) or `timeout_s` passes (False)."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while (value := await read()) != expected and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.05)
    return value == expected


async def test_killed_during_the_ack_path_the_retry_is_stored_once_and_answered_once(web_server):
    a = web_server(ASSISTANT_TOKEN_DELAY_S="0")
    b = web_server(ASSISTANT_TOKEN_DELAY_S="0")
    session = await widget_session(a.http_url)
    locked, release = threading.Event(), threading.Event()
    holder = threading.Thread(target=_hold_customer_lock, args=(session["customer_id"], locked, release))
    holder.start()
    try:
        await asyncio.to_thread(locked.wait, 10)
        first = Customer(a.ws_url, session["token"])
        await first.connect()
        frame = {"type": "message", "client_msg_id": str(uuid.uuid4()), "text": "are you there?"}
        await first.send(frame)
        assert await _statement_waits_on_a_lock("kefu_chat_message_receive")  # a's ack path
        a.kill()  # between the message and its ack
    finally:
        release.set()
        await asyncio.to_thread(holder.join, 30)
    # a's statement runs to its end once the lock is let go: Postgres notices a vanished client
    # only when it next writes to it, and the statement commits on its own (autocommit). So the
    # message is stored, unacked; the retry must be acked as it and answered once.
    assert await _eventually(lambda: Message.objects.filter(role="customer").acount(), 1)

    retry = Customer(b.ws_url, session["token"])
    ready = await retry.connect()
    assert ready["last_seq"] == 1  # the stored message counts: history, not a live event
    await retry.send(frame)
    events = await answer_of(retry)
    ack = next(e for e in events if e["type"] == "ack")
    assert (ack["client_msg_id"], ack["conversation_id"], ack["seq"]) == (
        frame["client_msg_id"], ready["conversation_id"], 1)
    assert [(e["type"], e.get("seq")) for e in events if e["type"] in ("message", "message_end")] == [
        ("message", 2), ("message_end", 3),
    ]
    assert await Message.objects.filter(role="customer").acount() == 1
    assert await Message.objects.filter(role="assistant").acount() == 1
    await retry.close()


async def test_a_customer_stalled_on_a_row_lock_does_not_delay_another_customers_ack(web_server):
    server = web_server(ASSISTANT_TOKEN_DELAY_S="0")
    stalled, other = await widget_session(server.http_url), await widget_session(server.http_url)
    locked, release = threading.Event(), threading.Event()
    holder = threading.Thread(target=_hold_customer_lock, args=(stalled["customer_id"], locked, release))
    holder.start()
    try:
        await asyncio.to_thread(locked.wait, 10)
        a, b = Customer(server.ws_url, stalled["token"]), Customer(server.ws_url, other["token"])
        await a.connect()
        await b.connect()
        await a.send({"type": "message", "client_msg_id": str(uuid.uuid4()), "text": "stuck"})
        await asyncio.sleep(0.2)
        await b.send({"type": "message", "client_msg_id": str(uuid.uuid4()), "text": "hello"})
        # b's ack arrives while a's row is still locked: the order proves b did not wait for a.
        b_ack = await b.recv(timeout=15)
        assert b_ack["type"] == "ack"
        assert not release.is_set()
    finally:
        release.set()
        await asyncio.to_thread(holder.join, 30)
    a_ack = await a.recv(timeout=15)
    assert a_ack["type"] == "ack"
    await a.close()
    await b.close()


async def test_200_customers_asking_at_once_each_get_exactly_one_whole_answer(web_server):
    # One IP opens 200 sessions at once here: the per-IP session limit is not what this tests.
    server = web_server(ASSISTANT_TOKEN_DELAY_S="0.03", RATELIMIT_SESSION_IP="")
    sessions = await asyncio.gather(*(widget_session(server.http_url) for _ in range(200)))
    customers = [Customer(server.ws_url, s["token"]) for s in sessions]
    for batch in range(0, 200, 50):
        await asyncio.gather(*(c.connect() for c in customers[batch : batch + 50]))

    async def ask(customer: Customer) -> list[dict]:
        await customer.send(
            {"type": "message", "client_msg_id": str(uuid.uuid4()), "text": "How long does shipping take?"}
        )
        return await answer_of(customer, timeout=240)

    results = await asyncio.gather(*(ask(c) for c in customers))
    stored = {str(m.pk): m.text async for m in Message.objects.filter(role="assistant")}
    assert len(stored) == 200
    for events in results:
        end = events[-1]
        assert durable(events) == [("message", 1), ("message", 2), ("message_end", 3)]
        assert end["stopped"] is False
        assert end["text"] == stored[end["message_id"]]  # what the widget shows once it ends
        # Live tokens are best effort: a socket that falls behind may get the durable end (from
        # Postgres) before them and drop them, but what it streamed is never other text.
        assert end["text"].startswith(shown_text(events, end["message_id"]))
        assert len({e["conversation_id"] for e in events}) == 1
    await asyncio.gather(*(c.close() for c in customers))


async def test_sigterm_hands_the_running_answer_over_to_another_process(web_server):
    a = web_server(ASSISTANT_TOKEN_DELAY_S="0.3", ASSISTANT_TOKEN_FLUSH_S="0")
    b = web_server(ASSISTANT_TOKEN_DELAY_S="0.01")
    token = (await widget_session(a.http_url))["token"]
    first = Customer(a.ws_url, token)
    await first.connect()
    await first.send({"type": "message", "client_msg_id": str(uuid.uuid4()), "text": "a question"})
    seen = await first.recv_until("token")
    await asyncio.to_thread(a.stop)  # SIGTERM: a graceful shutdown, as a deploy does

    assert "handed 1 running turn(s) over" in a.log.read_text()
    again = Customer(b.ws_url, token)
    await again.connect()
    await again.send({"type": "resume", "conversation_id": seen[0]["conversation_id"], "last_seq": 1})
    after = await answer_of(again)
    after += await events_within(again, 2)
    assert durable(after) == [("message", 2), ("message_end", 3)]
    end = next(e for e in after if e["type"] == "message_end")
    assert end["message_id"] == seen[-1]["message_id"] and end["stopped"] is False
    assert shown_text(after, end["message_id"]) == end["text"]
    assert await Message.objects.filter(role="assistant").acount() == 1
    await again.close()
