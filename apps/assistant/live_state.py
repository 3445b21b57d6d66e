"""The short-lived side of assistant turns, in Redis so that every process sees it:

- `turn:<conv>:partial:id` / `:partial:text`  the answer being generated and its text so far
  (what a resuming socket gets as `partial`)
- `turn:stop:<turn id>`  a `stop` asked for that turn: the fast path to its runner, which
  also finds the flag in Postgres when it renews its lease
Everything expires on its own. The truth (that an answer is due, and its stop) is in Postgres.
"""

from __future__ import annotations

from uuid import UUID

from apps.core.redis import redis_async, redis_key

PARTIAL_TTL_S = 120
STOP_TTL_S = 120


def _k(conversation_id: UUID | str, *parts: str) -> str:
    return redis_key("turn", conversation_id, *parts)


def _stop_key(turn_id: str) -> str:
    return redis_key("turn", "stop", turn_id)


async def partial_start(conversation_id: UUID | str, message_id: UUID | str) -> None:
    async with redis_async().pipeline(transaction=True) as pipe:
        pipe.set(_k(conversation_id, "partial", "id"), str(message_id), ex=PARTIAL_TTL_S)
        pipe.set(_k(conversation_id, "partial", "text"), "", ex=PARTIAL_TTL_S)
        await pipe.execute()


# APPEND the delta while the answer's partial exists; if Redis lost it (a restart), write the
# whole text again, so a resuming socket never gets a partial without its beginning.
_APPEND = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('APPEND', KEYS[2], ARGV[2])
else
  redis.call('SET', KEYS[1], ARGV[1])
  redis.call('SET', KEYS[2], ARGV[3])
end
redis.call('EXPIRE', KEYS[1], ARGV[4])
redis.call('EXPIRE', KEYS[2], ARGV[4])
return 1
"""


async def partial_append(conversation_id: UUID | str, message_id: str, delta: str, whole: str) -> None:
    """Add `delta` to the answer's text so far (`whole` is that text including the delta)."""
    await redis_async().eval(
        _APPEND, 2, _k(conversation_id, "partial", "id"), _k(conversation_id, "partial", "text"),
        str(message_id), delta, whole, PARTIAL_TTL_S,
    )


async def partial_get(conversation_id: UUID | str) -> tuple[str, str] | None:
    """(message_id, text so far) of the answer being generated, or None."""
    return partial_of(await redis_async().mget(partial_keys(conversation_id)))


def partial_keys(conversation_id: UUID | str) -> list[str]:
    """The partial's keys, for a caller that reads them beside others in one round trip."""
    return [_k(conversation_id, "partial", "id"), _k(conversation_id, "partial", "text")]


def partial_of(values: list[str | None]) -> tuple[str, str] | None:
    """`partial_get`'s answer from the values of `partial_keys`."""
    message_id, text = values
    return (message_id, text or "") if message_id else None


async def partial_clear(conversation_id: UUID | str) -> None:
    await redis_async().delete(_k(conversation_id, "partial", "id"), _k(conversation_id, "partial", "text"))


async def stop_flags_set(turn_ids: list[str]) -> None:
    if turn_ids:
        async with redis_async().pipeline(transaction=False) as pipe:
            for turn_id in turn_ids:
                pipe.set(_stop_key(turn_id), "1", ex=STOP_TTL_S)
            await pipe.execute()


async def stop_flags_get(turn_ids: list[str]) -> set[str]:
    """Which of these turns a `stop` was asked for (one round trip for all of them)."""
    if not turn_ids:
        return set()
    flags = await redis_async().mget([_stop_key(t) for t in turn_ids])
    return {turn_id for turn_id, flag in zip(turn_ids, flags, strict=True) if flag}
