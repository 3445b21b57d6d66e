"""At most N open sockets per customer across all server processes, counted in Redis.

Each socket holds a slot: a member of the customer's sorted set whose score is an expiry
time (Redis server time, so processes' clocks do not matter). A process refreshes its
sockets' slots every heartbeat and removes them on disconnect; the slots of a process that
crashed simply expire (3 x heartbeat) and are swept by the next claim.

The same per-process sweeper closes sockets silent for 3 x heartbeat (PROTOCOL.md §2), and
every half heartbeat repairs gaps: it reads the newest seq of every followed conversation
from Redis (one MGET for all the process's sockets) and lets a socket that is behind fetch
what it missed from Postgres — a dropped broadcast reaches the client within a heartbeat.
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from typing import Any, Protocol

from django.conf import settings

from apps.conversations.events import seq_key
from apps.core.redis import redis_async, redis_key

logger = logging.getLogger(__name__)

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


class Watched(Protocol):
    socket_id: str
    customer_id: object
    last_seen: float
    streams: Any

    async def close_silent(self) -> None: ...

    async def repair_gaps(self, marks: dict[str, int] | None = None) -> None: ...


class SocketSweeper:
    """One task per event loop: refreshes slots each heartbeat, closes silent sockets."""

    def __init__(self) -> None:
        self.sockets: dict[Watched, None] = {}
        self.task: asyncio.Task | None = None

    def add(self, sock: Watched) -> None:
        self.sockets[sock] = None
        if self.task is None or self.task.done():
            self.task = asyncio.get_running_loop().create_task(self._run(), name="chat-socket-sweeper")

    def discard(self, sock: Watched) -> None:
        self.sockets.pop(sock, None)

    async def _run(self) -> None:
        heartbeat = settings.CHAT_HEARTBEAT_S
        next_refresh = time.monotonic() + heartbeat
        next_repair = time.monotonic() + heartbeat / 2
        while self.sockets:
            await asyncio.sleep(min(1.0, heartbeat / 2))
            now = time.monotonic()
            for sock in [s for s in self.sockets if now - s.last_seen >= 3 * heartbeat]:
                self.discard(sock)
                asyncio.get_running_loop().create_task(sock.close_silent())
            if now >= next_refresh:
                next_refresh = now + heartbeat
                try:
                    await self._refresh()
                except Exception:  # Redis away for a moment: the next round refreshes
                    logger.exception("refreshing socket slots failed")
            if now >= next_repair:
                next_repair = now + heartbeat / 2
                try:
                    await self._repair()
                except Exception:
                    logger.exception("checking sockets for missed events failed")

    async def _repair(self) -> None:
        socks = list(self.sockets)
        followed = sorted({c for s in socks for c in s.streams.following()})
        marks = await conversation_marks(followed)
        for sock in socks:
            if any(marks.get(c, 0) > sock.streams.last_seq(c) for c in sock.streams.following()):
                asyncio.get_running_loop().create_task(sock.repair_gaps(marks))

    async def _refresh(self) -> None:
        socks = list(self.sockets)
        client = redis_async()
        for i in range(0, len(socks), _REFRESH_BATCH):
            batch = socks[i : i + _REFRESH_BATCH]
            await client.eval(
                _REFRESH,
                len(batch),
                *(slot_key(s.customer_id) for s in batch),
                _slot_ttl_ms(),
                *(s.socket_id for s in batch),
            )


_sweepers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, SocketSweeper] = weakref.WeakKeyDictionary()


def sweeper() -> SocketSweeper:
    """This loop's sweeper."""
    loop = asyncio.get_running_loop()
    if loop not in _sweepers:
        _sweepers[loop] = SocketSweeper()
    return _sweepers[loop]
