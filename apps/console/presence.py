"""Who is where, across processes, in Redis: agents online (for automatic assignment) and
the agents viewing or typing in each conversation (so two agents do not answer one customer).

Entries expire on their own (a crashed process leaves nothing for long): sockets refresh them
with every `ping`, which the console sends every PING_S.
"""

from __future__ import annotations

import json
import time
from typing import Any
from uuid import UUID

from apps.conversations.publisher import Published, publisher
from apps.core.redis import redis_async, redis_key, redis_sync

PING_S = 20
TTL_S = 3 * PING_S


def _online_key() -> str:
    return redis_key("console", "online")


def _presence_key(conversation_id: UUID | str) -> str:
    return redis_key("console", "presence", conversation_id)


async def online_touch(*, agent_id: int, socket_id: str) -> None:
    await redis_async().zadd(_online_key(), {f"{agent_id}:{socket_id}": time.time() + TTL_S})


async def online_leave(*, agent_id: int, socket_id: str) -> None:
    await redis_async().zrem(_online_key(), f"{agent_id}:{socket_id}")


def online_agent_ids() -> set[int]:
    """Agents with at least one live console socket (sync: automatic assignment)."""
    members = redis_sync().zrangebyscore(_online_key(), time.time(), "+inf")
    return {int(member.split(":", 1)[0]) for member in members}


async def presence_set(
    *, conversation_id: UUID | str, socket_id: str, agent: dict[str, Any], viewing: bool, typing: bool = False
) -> dict[str, Any]:
    """Record (or, when not viewing, drop) this socket's presence; return the `presence` event."""
    client, key = redis_async(), _presence_key(conversation_id)
    if viewing:
        entry = {"id": agent["id"], "name": agent["name"], "typing": typing, "exp": time.time() + TTL_S}
        async with client.pipeline(transaction=False) as pipe:
            pipe.hset(key, socket_id, json.dumps(entry))
            pipe.expire(key, TTL_S)
            await pipe.execute()
    else:
        await client.hdel(key, socket_id)
    return await presence_get(conversation_id=conversation_id)


async def presence_publish(
    *, conversation_id: UUID | str, socket_id: str, agent: dict[str, Any], viewing: bool, typing: bool = False
) -> None:
    """Record this socket's presence and tell the conversation's agents (through the publisher)."""
    event = await presence_set(
        conversation_id=conversation_id, socket_id=socket_id, agent=agent, viewing=viewing, typing=typing
    )
    await publisher().apublish(Published(str(conversation_id), None, event))


async def presence_get(*, conversation_id: UUID | str) -> dict[str, Any]:
    now, viewing, typing = time.time(), {}, {}
    for raw in (await redis_async().hgetall(_presence_key(conversation_id))).values():
        entry = json.loads(raw)
        if entry["exp"] < now:
            continue
        agent = {"id": entry["id"], "name": entry["name"]}
        viewing[agent["id"]] = agent
        if entry["typing"]:
            typing[agent["id"]] = agent
    return {
        "type": "presence",
        "conversation_id": str(conversation_id),
        "viewing": list(viewing.values()),
        "typing": list(typing.values()),
    }
