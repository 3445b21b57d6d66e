"""Every rate limit of the product, in one mechanism: the `limits` package's moving window,
one table of named limits, one answer ("limited, retry after n s").

Shared limits are counted in Redis, keyed by KEFU_REDIS_PREFIX, so ten web processes enforce one
limit, not ten (each a `limits` rate string from its setting, several joined by `;`):
    session_ip            RATELIMIT_SESSION_IP            widget sessions created per client IP
    message_customer      RATELIMIT_MESSAGE_CUSTOMER      chat messages per customer
    answer_customer_hour  RATELIMIT_ANSWER_CUSTOMER_HOUR  assistant answers per customer (cost guard)
An empty rate string switches that limit off. While Redis cannot be reached each process counts
in its own memory (logged): an outage of the counters neither refuses every customer nor lifts
the limits; the site then admits at most (web processes) x the limit.

Socket limits (SOCKET_LIMITS, keyed by a socket's id) are counted in this process's memory
only: a socket lives in one process, and a Redis round trip per frame would buy nothing.

`limit_check` (sync views) and `limit_hit` (async consumers and turns) are the two doors to it.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import math
import threading
import time
import weakref
from dataclasses import dataclass

import redis
from django.conf import settings
from limits import RateLimitItem, parse_many
from limits.aio.storage import RedisStorage as AsyncRedisStorage
from limits.aio.strategies import MovingWindowRateLimiter as AsyncMovingWindowRateLimiter
from limits.storage import MemoryStorage, RedisStorage
from limits.strategies import MovingWindowRateLimiter

logger = logging.getLogger(__name__)
_UNREACHABLE = (redis.RedisError, OSError)

LIMIT_SETTINGS = {
    "session_ip": "RATELIMIT_SESSION_IP",
    "message_customer": "RATELIMIT_MESSAGE_CUSTOMER",
    "answer_customer_hour": "RATELIMIT_ANSWER_CUSTOMER_HOUR",
}

# PROTOCOL.md §2/§3 "rate rules", per socket (chat and console alike): bursts are generous for
# people and tight for scripts.
SOCKET_LIMITS = {
    "frame_socket": "60 per 6 seconds",  # any frame: 60 at once, 10 a second sustained
    "message_socket": "10 per 20 seconds",  # messages, replies, notes: 10 at once, then one per 2 s
}


@dataclass(frozen=True)
class LimitResult:
    limited: bool
    retry_after_s: int  # 0 when not limited


def _items(name: str) -> list[RateLimitItem]:
    rate = SOCKET_LIMITS.get(name)
    return _parsed(getattr(settings, LIMIT_SETTINGS[name]) if rate is None else rate)


@functools.lru_cache(maxsize=64)
def _parsed(rate: str) -> list[RateLimitItem]:
    return parse_many(rate) if rate else []


def _prefix() -> str:
    return f"{settings.KEFU_REDIS_PREFIX}:ratelimit"


# --- the per-process fallback while Redis is away --------------------------------------------

_memory: MovingWindowRateLimiter | None = None
_memory_lock = threading.Lock()
# After a failure Redis is left alone this long: an unreachable host must not add its timeout
# to every request of an outage.
REDIS_RETRY_S = 2.0
_redis_down_until: dict[str, float] = {}  # REDIS_URL|prefix -> monotonic time to try again


def _memory_limiter() -> MovingWindowRateLimiter:
    global _memory
    with _memory_lock:
        if _memory is None:  # made on first need: MemoryStorage starts an expiry thread
            _memory = MovingWindowRateLimiter(MemoryStorage())
        return _memory


def _redis_usable(config: str) -> bool:
    return time.monotonic() >= _redis_down_until.get(config, 0.0)


def _redis_failed(config: str, name: str) -> None:
    _redis_down_until[config] = time.monotonic() + REDIS_RETRY_S
    logger.warning("rate limit %s counted in this process only: Redis unreachable", name, exc_info=True)


def _check(limiter: MovingWindowRateLimiter, items: list[RateLimitItem], name: str, key: str) -> LimitResult:
    # `hit` is atomic in Redis (a Lua script), so concurrent processes never over-admit.
    refused = [item for item in items if not limiter.hit(item, name, key)]
    if not refused:
        return LimitResult(limited=False, retry_after_s=0)
    reset = max(limiter.get_window_stats(item, name, key).reset_time for item in refused)
    return LimitResult(limited=True, retry_after_s=max(1, math.ceil(reset - time.time())))


def _config() -> str:
    return f"{settings.REDIS_URL}|{_prefix()}"


# --- sync (views) ---------------------------------------------------------------------------

_sync: tuple[str, MovingWindowRateLimiter] | None = None


def _sync_limiter() -> MovingWindowRateLimiter:
    global _sync
    config = _config()
    if _sync is None or _sync[0] != config:
        storage = RedisStorage(settings.REDIS_URL, key_prefix=_prefix(), socket_timeout=5)
        _sync = (config, MovingWindowRateLimiter(storage))
    return _sync[1]


def limit_check(*, name: str, key: str) -> LimitResult:
    """Count one hit of `name` for `key`; limited (with seconds to wait) when over any rate."""
    items = _items(name)
    if not items:
        return LimitResult(limited=False, retry_after_s=0)
    config = _config()
    if name not in SOCKET_LIMITS and _redis_usable(config):
        try:
            return _check(_sync_limiter(), items, name, key)
        except _UNREACHABLE:
            _redis_failed(config, name)
    return _check(_memory_limiter(), items, name, key)


# --- async (consumers) ----------------------------------------------------------------------

# redis.asyncio connections belong to the loop that made them: one limiter per loop.
_async: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, tuple[str, AsyncMovingWindowRateLimiter]] = (
    weakref.WeakKeyDictionary()
)


def _async_limiter() -> AsyncMovingWindowRateLimiter:
    loop = asyncio.get_running_loop()
    config = _config()
    cached = _async.get(loop)
    if cached is None or cached[0] != config:
        uri = "async+" + settings.REDIS_URL
        storage = AsyncRedisStorage(uri, implementation="redispy", key_prefix=_prefix(), socket_timeout=5)
        cached = (config, AsyncMovingWindowRateLimiter(storage))
        _async[loop] = cached
    return cached[1]


async def limit_hit(*, name: str, key: str) -> bool:
    """Count one hit of `name` ("message_customer", "answer_customer_hour", a socket limit) for
    `key` (a customer's or socket's id); True when over the limit: the caller answers
    `rate_limited` and does not do the work."""
    items = _items(name)
    if not items:
        return False
    config = _config()
    if name not in SOCKET_LIMITS and _redis_usable(config):
        limiter = _async_limiter()
        try:
            admitted = [await limiter.hit(item, name, key) for item in items]
            return not all(admitted)
        except _UNREACHABLE:
            _redis_failed(config, name)
    # In memory, no I/O: the sync limiter does not block the loop.
    return _check(_memory_limiter(), items, name, key).limited
