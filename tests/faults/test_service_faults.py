"""Backing-service faults and a client that reads nothing, on real uvicorn servers: Redis
restarted mid-answer, Postgres unreachable for a while, a customer whose events pile up."""

import asyncio
import secrets
import socket
import uuid

import psutil
import pytest
import websockets
from asgiref.sync import sync_to_async

from apps.conversations.events import event_emit
from apps.conversations.models import Message
from tests.support.faults import database_url_via
from tests.support.sockets import Customer, answer_of, shown_text, widget_session

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


async def resume_until_end(server, token, conversation_id, last_seq, seen):
    """What the widget does after its socket dropped: reconnect, resume, read to the end."""
    for _ in range(20):
        again = Customer(server.ws_url, token)
        try:
            await again.connect()
        except OSError:
            await asyncio.sleep(0.5)
            continue
        await again.send({"type": "resume", "conversation_id": conversation_id, "last_seq": last_seq})
        events = await answer_of(again)
        seen += events
        if events[-1]["type"] == "message_end":
            return again
        last_seq = max([last_seq] + [e["seq"] for e in events if "seq" in e and e["type"] != "ack"])
        await asyncio.sleep(0.5)
    raise AssertionError(f"the answer never ended: {seen[-5:]}")


async def test_redis_restarted_mid_answer_nothing_acknowledged_is_lost(web_server, private_redis):
    server = web_server(REDIS_URL=private_redis.url, CELERY_BROKER_URL=private_redis.url,
                        ASSISTANT_TOKEN_DELAY_S="0.2", ASSISTANT_TOKEN_FLUSH_S="0", RATELIMIT_SESSION_IP="")
    session = await widget_session(server.http_url)
    customer = Customer(server.ws_url, session["token"])
    await customer.connect()
    await customer.send({"type": "message", "client_msg_id": str(uuid.uuid4()), "text": "hello?"})
    seen = await customer.recv_until("token")
    conversation_id = seen[0]["conversation_id"]
    await asyncio.to_thread(private_redis.restart)

    # The socket either survives or is closed; the widget then reconnects and resumes.
    seen += await answer_of(customer, timeout=30)
    if seen[-1]["type"] != "message_end":
        last_seq = max(e["seq"] for e in seen if "seq" in e and e["type"] != "ack")
        customer = await resume_until_end(server, session["token"], conversation_id, last_seq, seen)

    ends = [e for e in seen if e["type"] == "message_end"]
    assert len(ends) == 1 and ends[0]["stopped"] is False
    stored = await Message.objects.aget(role="assistant")
    assert (str(stored.pk), stored.text) == (ends[0]["message_id"], ends[0]["text"])
    assert await Message.objects.filter(role="customer").acount() == 1

    # The channel layer works again: a second question (on a fresh socket, as the widget's
    # reconnect would open) is acked and answered live.
    await customer.close()
    customer = Customer(server.ws_url, session["token"])
    await customer.connect()
    await customer.send({"type": "message", "client_msg_id": str(uuid.uuid4()), "text": "again"})
    after = await answer_of(customer)
    durable = [e["type"] for e in after if "seq" in e and e["type"] != "ack"]
    assert durable == ["message", "message", "message_end"]
    assert shown_text(after, after[-1]["message_id"]) == after[-1]["text"]
    await customer.close()


async def test_postgres_unreachable_frames_get_unavailable_then_everything_works(web_server, postgres_proxy):
    server = web_server(DATABASE_URL=database_url_via(postgres_proxy), ASSISTANT_TOKEN_DELAY_S="0")
    session = await widget_session(server.http_url)
    customer = Customer(server.ws_url, session["token"])
    await customer.connect()
    acked = {"type": "message", "client_msg_id": str(uuid.uuid4()), "text": "before"}
    await customer.send(acked)
    before = await answer_of(customer)
    assert before[0]["type"] == "ack"

    postgres_proxy.cut()  # what the server sees while Postgres restarts
    frame = {"type": "message", "client_msg_id": str(uuid.uuid4()), "text": "during"}
    await customer.send(frame)
    error = await customer.recv()
    assert (error["type"], error["code"]) == ("error", "unavailable")
    assert error["client_msg_id"] == frame["client_msg_id"]
    await customer.send({"type": "ping", "ts": 1})
    assert await customer.recv() == {"type": "pong", "ts": 1}  # the socket stayed open

    postgres_proxy.restore()
    await customer.send(frame)  # the widget retries `unavailable`
    during = await answer_of(customer)
    assert during[0]["type"] == "ack" and during[0]["client_msg_id"] == frame["client_msg_id"]
    assert during[-1]["type"] == "message_end"
    texts = [m.text async for m in Message.objects.filter(role="customer").order_by("created_at")]
    assert texts == ["before", "during"]
    await customer.close()


def _flood(conversation_id, count, size):
    body = secrets.token_urlsafe(size)[:size]  # incompressible: the socket's deflate cannot shrink it
    for i in range(count):
        event_emit(conversation=conversation_id, type="update",
                   payload={"kind": "bulk", "title": f"update {i}", "body": body, "data": {}})


async def test_a_customer_who_reads_nothing_is_closed_and_the_server_stays_bounded(web_server):
    server = web_server(CHAT_SEND_TIMEOUT_S="3", ASSISTANT_TOKEN_DELAY_S="0.01", RATELIMIT_SESSION_IP="")
    slow_session, other_session = await widget_session(server.http_url), await widget_session(server.http_url)
    # A small receive buffer, set before connecting: the kernel may otherwise take tens of MB.
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
    sock.connect(("127.0.0.1", server.port))
    slow = Customer(server.ws_url, slow_session["token"])
    slow.ws = await websockets.connect(
        f"{server.ws_url}/ws/chat/", sock=sock, ping_interval=None, max_queue=4, max_size=None
    )
    await slow.send({"type": "auth", "token": slow.token})
    assert (await slow.recv())["type"] == "ready"
    await slow.send({"type": "message", "client_msg_id": str(uuid.uuid4()), "text": "hi"})
    conversation_id = (await slow.recv())["conversation_id"]
    await answer_of(slow)
    # From here on it reads nothing (its library stops reading TCP once it holds 4 frames).
    other = Customer(server.ws_url, other_session["token"])
    await other.connect()
    await other.send({"type": "message", "client_msg_id": str(uuid.uuid4()), "text": "hello?"})
    await answer_of(other)  # the server has answered once (models loaded) before it is measured
    rss_before = psutil.Process(server.proc.pid).memory_info().rss

    # 60 MB of events pile up for it: far more than the kernel's socket buffers hold.
    await sync_to_async(_flood)(conversation_id, 100, 600_000)
    await other.send({"type": "message", "client_msg_id": str(uuid.uuid4()), "text": "am I served?"})
    answered = await answer_of(other)
    for _ in range(300):  # the server gives up on the stuck socket after CHAT_SEND_TIMEOUT_S
        if "closing a chat socket that read nothing" in server.log.read_text():
            break
        await asyncio.sleep(0.1)
    rss_after = psutil.Process(server.proc.pid).memory_info().rss

    assert answered[-1]["type"] == "message_end"
    assert shown_text(answered, answered[-1]["message_id"]) == answered[-1]["text"]
    assert "closing a chat socket that read nothing" in server.log.read_text()
    # Bounded, not zero: channels-redis pulls up to `capacity` events of a socket into the process
    # while its send is blocked; the 60 MB flood must not be held more than once, nor grow past it.
    assert rss_after - rss_before < 80 * 1024 * 1024, (rss_before, rss_after)
    closed = None
    for _ in range(200):  # what the kernel buffered, then the close
        event = await slow.recv(timeout=20)
        if event["type"] == "closed":
            closed = event
            break
    # 4408, or no close frame at all if the server had to drop the stuck connection.
    assert closed is not None and closed["code"] in (4408, None), closed
    await other.close()
