"""End to end: two real uvicorn processes behind one Redis, real `websockets` clients (the close
codes on Daphne: test_daphne.py)."""

import asyncio
import uuid

import pytest
import redis.asyncio as aioredis
from django.conf import settings

from apps.conversations.models import Message
from apps.realtime.socket_slots import slot_key
from tests.support.sockets import Customer, shown_text, widget_session

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def servers(web_server):
    """Two server processes; the builtin answer streams slowly enough to interrupt."""
    return web_server(ASSISTANT_TOKEN_DELAY_S="0.2"), web_server(ASSISTANT_TOKEN_DELAY_S="0.2")


async def test_an_event_produced_in_one_process_reaches_a_socket_in_the_other(servers):
    a, b = servers
    token = (await widget_session(a.http_url))["token"]
    on_a, on_b = Customer(a.ws_url, token), Customer(b.ws_url, token)
    await on_a.connect()
    await on_a.send({"type": "message", "client_msg_id": str(uuid.uuid4()), "text": "hi from A"})
    conversation_id = (await on_a.recv())["conversation_id"]
    await on_a.recv_until("message_end")

    ready = await on_b.connect()
    assert (ready["conversation_id"], ready["last_seq"]) == (conversation_id, 3)
    await on_b.send({"type": "message", "client_msg_id": str(uuid.uuid4()), "text": "hi from B"})

    seen_on_a = await on_a.recv_until("message_end")  # the answer is generated in B
    assert [(e["type"], e.get("seq")) for e in seen_on_a if e["type"] != "token"] == [
        ("message", 4),
        ("message", 5),
        ("message_end", 6),
    ]
    assert seen_on_a[0]["message"]["text"] == "hi from B"
    assert shown_text(seen_on_a, seen_on_a[-1]["message_id"]) == seen_on_a[-1]["text"]
    await on_a.close()
    await on_b.close()


async def test_client_killed_mid_answer_resumes_on_the_other_process_missing_nothing(servers):
    a, b = servers
    token = (await widget_session(a.http_url))["token"]
    first = Customer(a.ws_url, token)
    await first.connect()
    await first.send({"type": "message", "client_msg_id": str(uuid.uuid4()), "text": "a long question"})
    seen = await first.recv_until("token")
    seen += await first.recv_until("token")
    first.kill()
    conversation_id = seen[0]["conversation_id"]
    last_seq = max(e["seq"] for e in seen if "seq" in e and e["type"] != "ack")
    assert last_seq == 1

    again = Customer(b.ws_url, token)
    await again.connect()
    await again.send({"type": "resume", "conversation_id": conversation_id, "last_seq": last_seq})
    after = await again.recv_until("message_end")

    assert [e["type"] for e in after[:2]] == ["resumed", "partial"]
    assert [(e["type"], e["seq"]) for e in after if "seq" in e] == [("message", 2), ("message_end", 3)]
    end = after[-1]
    assert end["stopped"] is False
    assert shown_text(after, end["message_id"]) == end["text"]
    assert after[-2]["message"]["text"] == end["text"]
    await again.close()


async def test_retried_message_after_reconnecting_elsewhere_is_stored_once(servers):
    a, b = servers
    token = (await widget_session(a.http_url))["token"]
    first = Customer(a.ws_url, token)
    await first.connect()
    frame = {"type": "message", "client_msg_id": str(uuid.uuid4()), "text": "order 42?"}
    await first.send(frame)
    ack = await first.recv()
    first.kill()  # before the client could record the ack, say

    again = Customer(b.ws_url, token)
    await again.connect()
    await again.send(frame)
    # `ready` named the open conversation, so its answer's live tokens may come first.
    assert (await again.recv_until("ack"))[-1] == ack
    await again.send({"type": "resume", "conversation_id": ack["conversation_id"], "last_seq": 0})
    events = await again.recv_until("message_end")
    assert [(e["type"], e["seq"]) for e in events if "seq" in e] == [
        ("message", 1),
        ("message", 2),
        ("message_end", 3),
    ]
    assert await Message.objects.filter(client_msg_id=frame["client_msg_id"]).acount() == 1
    assert await Message.objects.filter(role="assistant").acount() == 1
    await again.close()


async def test_stop_sent_to_one_process_stops_the_answer_generated_in_the_other(servers):
    a, b = servers
    token = (await widget_session(a.http_url))["token"]
    asker, stopper = Customer(a.ws_url, token), Customer(b.ws_url, token)
    await asker.connect()
    await asker.send({"type": "message", "client_msg_id": str(uuid.uuid4()), "text": "explain"})
    seen = await asker.recv_until("token")
    conversation_id = seen[0]["conversation_id"]
    await stopper.connect()

    await stopper.send({"type": "stop", "conversation_id": conversation_id})
    seen += await asker.recv_until("message_end")
    stopper_seen = await stopper.recv_until("message_end")

    end = seen[-1]
    assert end["stopped"] is True and stopper_seen[-1] == end
    assert shown_text(seen, end["message_id"]) == end["text"]
    assert (await Message.objects.aget(pk=end["message_id"])).stopped is True
    await asker.close()
    await stopper.close()


async def test_five_sockets_per_customer_across_processes_and_a_crash_frees_its_slots(web_server):
    a = web_server(CHAT_HEARTBEAT_S="1")
    b = web_server(CHAT_HEARTBEAT_S="1")
    session = await widget_session(a.http_url)
    token = session["token"]
    held = [Customer(server.ws_url, token) for server in (a, a, a, b, b)]
    for customer in held:
        assert (await customer.connect())["type"] == "ready"

    sixth = Customer(b.ws_url, token)
    assert await sixth.connect() == {"type": "closed", "code": 4429}

    a.kill()  # three slots held by a process that no longer exists
    assert await Customer(b.ws_url, token).connect() == {"type": "closed", "code": 4429}
    for _ in range(4):  # slots live 3 x heartbeat unless their process refreshes them, which
        await asyncio.sleep(1)  # B does for its own two while they keep the heartbeat
        for customer in held[3:]:
            await customer.send({"type": "ping", "ts": 1})
            assert await customer.recv() == {"type": "pong", "ts": 1}
    revived = [Customer(b.ws_url, token) for _ in range(3)]
    for customer in revived:
        assert (await customer.connect())["type"] == "ready"
    assert await Customer(b.ws_url, token).connect() == {"type": "closed", "code": 4429}

    for customer in held[3:] + revived:
        await customer.close()
    client = aioredis.Redis.from_url(settings.REDIS_URL)
    key = slot_key(session["customer_id"])
    for _ in range(100):  # the server handles the closes after the clients see them done
        if await client.zcard(key) == 0:
            break
        await asyncio.sleep(0.1)
    assert await client.zcard(key) == 0
    await client.aclose()


async def test_the_server_declines_per_message_deflate_the_client_offers(web_server):
    """Chat frames are small: compressing them saved little and doubled an idle socket's memory
    (Procfile `--ws-per-message-deflate false`). The browser's offer is declined; chat works."""
    server = web_server()
    customer = Customer(server.ws_url, (await widget_session(server.http_url))["token"])
    await customer.open(compression="deflate")  # what browsers and `websockets` offer by default

    assert "permessage-deflate" in customer.ws.request.headers["Sec-WebSocket-Extensions"]
    assert customer.ws.response.headers.get("Sec-WebSocket-Extensions") is None
    await customer.send({"type": "auth", "token": customer.token})
    assert (await customer.recv())["type"] == "ready"
    await customer.close()
