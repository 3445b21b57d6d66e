"""DESIGN.md trap: idle sockets past the Redis read timeout stay up, and a burst of 100
disconnects leaves no group membership and no socket slot behind in Redis."""

import asyncio
import uuid

import pytest
import redis.asyncio as aioredis
from django.conf import settings

from apps.realtime.socket_slots import slot_key
from tests.support.sockets import Customer, widget_session

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


async def redis_leftovers(client, conversation_ids, customer_ids):
    """Group members and socket slots of these conversations and customers only: other tests'
    killed servers leave slots of their own customers to expire."""
    groups = [
        await client.zcard(f"{settings.KEFU_REDIS_PREFIX}:asgi:group:conv.{c}") for c in conversation_ids
    ]
    slots = [await client.zcard(slot_key(c)) for c in customer_ids]
    return sum(groups), sum(slots)


async def test_100_idle_sockets_survive_35_s_and_leave_nothing_when_closed_at_once(web_server):
    server = web_server(ASSISTANT_TOKEN_DELAY_S="0")
    client = aioredis.Redis.from_url(settings.REDIS_URL)
    sockets, conversation_ids, customer_ids = [], [], []
    for _ in range(20):  # 20 customers x 5 sockets, every socket following a conversation
        session = await widget_session(server.http_url)
        token = session["token"]
        customer_ids.append(session["customer_id"])
        starter = Customer(server.ws_url, token)
        await starter.connect()
        await starter.send({"type": "message", "client_msg_id": str(uuid.uuid4()), "text": "hello"})
        conversation_ids.append((await starter.recv())["conversation_id"])
        await starter.recv_until("message_end")
        sockets.append(starter)
        for _ in range(4):
            extra = Customer(server.ws_url, token)
            ready = await extra.connect()
            assert ready["conversation_id"] == conversation_ids[-1]
            sockets.append(extra)
    assert await redis_leftovers(client, conversation_ids, customer_ids) == (100, 100)
    for socket in sockets:  # the idle time starts now for all, however long the set-up took
        await socket.send({"type": "ping", "ts": "start"})
    assert [await s.recv() for s in sockets] == [{"type": "pong", "ts": "start"}] * 100

    await asyncio.sleep(35)  # idle: longer than any Redis read timeout, shorter than 3 heartbeats

    for n, socket in enumerate(sockets):
        await socket.send({"type": "ping", "ts": n})
    assert [await s.recv() for s in sockets] == [{"type": "pong", "ts": n} for n in range(100)]

    await asyncio.gather(*(s.close() for s in sockets))
    for _ in range(100):  # the server handles the closes after the clients see them done
        if await redis_leftovers(client, conversation_ids, customer_ids) == (0, 0):
            break
        await asyncio.sleep(0.1)
    assert await redis_leftovers(client, conversation_ids, customer_ids) == (0, 0)
    assert "Traceback" not in server.log.read_text()
    await client.aclose()
