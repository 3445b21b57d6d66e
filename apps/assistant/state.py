"""The short-lived state of assistant turns, in Redis so that every process sees it:

- `turn:<conv>:lock`     the process running the conversation's turns (TTL, refreshed)
- `turn:<conv>:pending`  a customer message is waiting for an answer
- `turn:<conv>:partial:id` / `:partial:text`  the answer being generated and its text so far
- `turn:stop:<message_id>`  a `stop` asked for that answer
Everything expires on its own, so a crashed process leaves nothing behind for long.
"""

from __future__ import annotations

from uuid import UUID

from apps.core.redis import redis_async, redis_key

LOCK_TTL_S = 30
PENDING_TTL_S = 300
PARTIAL_TTL_S = 60
STOP_TTL_S = 60

_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


def _k(conversation_id: UUID | str, *parts: str) -> str:
    return redis_key("turn", conversation_id, *parts)


async def pending_set(conversation_id: UUID | str) -> None:
    await redis_async().set(_k(conversation_id, "pending"), "1", ex=PENDING_TTL_S)


async def pending_take(conversation_id: UUID | str) -> bool:
    return bool(await redis_async().getdel(_k(conversation_id, "pending")))


async def pending_exists(conversation_id: UUID | str) -> bool:
    return bool(await redis_async().exists(_k(conversation_id, "pending")))


async def lock_acquire(conversation_id: UUID | str, owner: str) -> bool:
    return bool(await redis_async().set(_k(conversation_id, "lock"), owner, nx=True, ex=LOCK_TTL_S))


async def lock_release(conversation_id: UUID | str, owner: str) -> None:
    await redis_async().eval(_RELEASE, 1, _k(conversation_id, "lock"), owner)


async def partial_start(conversation_id: UUID | str, message_id: UUID | str) -> None:
    async with redis_async().pipeline(transaction=True) as pipe:
        pipe.set(_k(conversation_id, "partial", "id"), str(message_id), ex=PARTIAL_TTL_S)
        pipe.set(_k(conversation_id, "partial", "text"), "", ex=PARTIAL_TTL_S)
        await pipe.execute()


async def partial_append(conversation_id: UUID | str, text: str) -> None:
    await redis_async().append(_k(conversation_id, "partial", "text"), text)


async def partial_get(conversation_id: UUID | str) -> tuple[str, str] | None:
    """(message_id, text so far) of the answer being generated, or None."""
    message_id, text = await redis_async().mget(
        _k(conversation_id, "partial", "id"), _k(conversation_id, "partial", "text")
    )
    return (message_id, text or "") if message_id else None


async def partial_clear(conversation_id: UUID | str) -> None:
    await redis_async().delete(_k(conversation_id, "partial", "id"), _k(conversation_id, "partial", "text"))


async def stop_request(conversation_id: UUID | str) -> bool:
    """Flag the answer now being generated to stop; False when none is."""
    partial = await partial_get(conversation_id)
    if partial is None:
        return False
    await redis_async().set(redis_key("turn", "stop", partial[0]), "1", ex=STOP_TTL_S)
    return True


async def heartbeat(conversation_id: UUID | str, owner: str, message_id: UUID | str) -> bool:
    """Keep the turn's keys alive; True when a stop was asked for this answer."""
    async with redis_async().pipeline(transaction=False) as pipe:
        pipe.exists(redis_key("turn", "stop", message_id))
        pipe.expire(_k(conversation_id, "lock"), LOCK_TTL_S)
        pipe.expire(_k(conversation_id, "partial", "id"), PARTIAL_TTL_S)
        pipe.expire(_k(conversation_id, "partial", "text"), PARTIAL_TTL_S)
        stopped, *_ = await pipe.execute()
    return bool(stopped)
