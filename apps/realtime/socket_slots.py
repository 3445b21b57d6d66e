"""What the chat sockets keep in Redis: at most N open sockets per customer across all server
processes, and the conversations' newest seqs that gap repair compares against (read beside the
answer's partial, apps/assistant/live_state.py, when a socket's message begins a conversation).

Each socket holds a slot: a member of the customer's sorted set whose score is an expiry
time (Redis server time, so processes' clocks do not matter). The process's heartbeat
(heartbeat.py) refreshes its sockets' slots every beat, and a socket removes its own on
disconnect; the slots of a process that crashed simply expire (3 x heartbeat) and are swept
by the next claim.
"""

from __future__ import annotations

from django.conf import settings

from apps.assistant.live_state import partial_keys, partial_of
from apps.conversations.events import seq_key
from apps.core.redis import redis_async, redis_key

# KEYS[1] slot set; ARGV: member, ttl ms, limit. Returns 1 (claimed) or 0 (full).
_CLAIM = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZSCORE', KEYS[1], ARGV[1]) == false
   and redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[3]) then
  return 0
end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]))
return 1
"""
# KEYS: slot sets; ARGV[1] ttl ms, then one member per key. Extends only slots still held.
_REFRESH = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
for i, key in ipairs(KEYS) do
  if redis.call('ZADD', key, 'XX', 'CH', now + tonumber(ARGV[1]), ARGV[i + 1]) then
    redis.call('PEXPIRE', key, tonumber(ARGV[1]))
  end
end
return #KEYS
"""
_REFRESH_BATCH = 500
_MARKS_BATCH = 1000


def slot_key(customer_id: object) -> str:
    return redis_key("chat", "sockets", customer_id)


def _slot_ttl_ms() -> int:
    return 3 * settings.CHAT_HEARTBEAT_S * 1000


async def slot_claim(*, customer_id: object, socket_id: str) -> bool:
    """Take one of the customer's socket slots; False when all are held."""
    claimed = await redis_async().eval(
        _CLAIM, 1, slot_key(customer_id), socket_id, _slot_ttl_ms(), settings.CHAT_MAX_SOCKETS_PER_CUSTOMER
    )
    return bool(claimed)


async def slot_release(*, customer_id: object, socket_id: str) -> None:
    await redis_async().zrem(slot_key(customer_id), socket_id)


async def slot_count(*, customer_id: object) -> int:
    """Slots held now (expired ones not counted)."""
    client = redis_async()
    now_s, now_us = await client.time()
    return await client.zcount(slot_key(customer_id), now_s * 1000 + now_us // 1000 + 1, "+inf")


async def conversation_marks(conversation_ids: list[str]) -> dict[str, int]:
    """The newest seq of each conversation as Redis knows it (missing ones left out)."""
    marks: dict[str, int] = {}
    client = redis_async()
    for i in range(0, len(conversation_ids), _MARKS_BATCH):
        batch = conversation_ids[i : i + _MARKS_BATCH]
        for conversation_id, seq in zip(batch, await client.mget([seq_key(c) for c in batch]), strict=True):
            if seq is not None:
                marks[conversation_id] = int(seq)
    return marks


async def conversation_begun_state(conversation_id: str) -> tuple[int, tuple[str, str] | None]:
    """For a conversation a socket's message just began: its newest seq as Redis knows it (0 when
    none) and the answer being generated there, if any (`partial_get`), in one round trip."""
    seq, *partial = await redis_async().mget([seq_key(conversation_id), *partial_keys(conversation_id)])
    return int(seq or 0), partial_of(partial)


async def slots_refresh(held: list[tuple[object, str]]) -> None:
    """Extend the slots still held, given as (customer_id, socket_id), a batch per round trip."""
    client = redis_async()
    for i in range(0, len(held), _REFRESH_BATCH):
        batch = held[i : i + _REFRESH_BATCH]
        await client.eval(
            _REFRESH,
            len(batch),
            *(slot_key(customer_id) for customer_id, _ in batch),
            _slot_ttl_ms(),
            *(socket_id for _, socket_id in batch),
        )
