"""Every rate limit of the product, in one mechanism: the `limits` package's moving window,
one table of named limits, one answer ("limited, retry after n s").

Shared limits are counted in Redis, keyed by KEFU_REDIS_PREFIX, so ten web processes enforce one
limit, not ten (each a `limits` rate string from its setting, several joined by `;`):
    session_ip            RATELIMIT_SESSION_IP            widget sessions created per client IP
An empty rate string switches that limit off. While Redis cannot be reached each process counts
it in its own memory (logged; `MovingWindows`): an outage of the counters neither refuses every
customer nor lifts the limit; the site then admits at most (web processes) x the limit.

The customer's limits are counted in Postgres instead, on the customer's row (its last hit
times), by statements that run anyway, with one moving window (SQL functions of core migration
0002): exact across processes, no Redis round trip while a customer waits, no outage fallback.
They read their rates here (`limit_windows`):
    message_customer      RATELIMIT_MESSAGE_CUSTOMER      chat messages per customer, by the
                                                          statement that stores the message
                                                          (realtime migration 0003)
    answer_customer_hour  RATELIMIT_ANSWER_CUSTOMER_HOUR  assistant answers per customer (cost
                                                          guard), on the trip that claims the
                                                          answer (apps/assistant/turn_store.py)

Socket limits (SOCKET_LIMITS, keyed by a socket's id) are counted in this process's memory
only: a socket lives in one process, and a Redis round trip per frame would buy nothing. They
are the same moving windows, kept per socket in `MovingWindows` and dropped with the socket
(`limit_forget`): `limits`' MemoryStorage re-arms a 10 ms timer thread on every hit that walks
every key holding the GIL (1.4 ms a pass at 1,000 sockets, measured), which stalled the event
loop between frames, and starting that thread from the loop blocked it too.

`limit_check` (sync views) and `limit_hit` (socket limits, async) are the two doors to it.
"""

from __future__ import annotations

import functools
import logging
import math
import time
from collections import deque
from dataclasses import dataclass

import redis
from django.conf import settings
from limits import RateLimitItem, parse_many
from limits.storage import RedisStorage
from limits.strategies import MovingWindowRateLimiter

from .redis import sync_pool
from .runtime import runtime

logger = logging.getLogger(__name__)
_UNREACHABLE = (redis.RedisError, OSError)

LIMIT_SETTINGS = {"session_ip": "RATELIMIT_SESSION_IP"}
# Counted in Postgres by their own statements, which ask `limit_windows` for the rates. Each keeps
# the last (largest amount) hit times on the customer's row, rewritten on every hit: amounts
# above HITS_MAX are refused by a system check (apps/core/checks.py).
POSTGRES_LIMIT_SETTINGS = {
    "message_customer": "RATELIMIT_MESSAGE_CUSTOMER",
    "answer_customer_hour": "RATELIMIT_ANSWER_CUSTOMER_HOUR",
}
HITS_MAX = 1000

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


def limit_windows(name: str) -> tuple[list[int], list[int]]:
    """The rates of a limit counted in Postgres (POSTGRES_LIMIT_SETTINGS) as two lists: the
    amounts and their windows in seconds ("20/minute;200/hour" -> [20, 200], [60, 3600]);
    empty when the setting switches it off."""
    items = _parsed(getattr(settings, POSTGRES_LIMIT_SETTINGS[name]))
    return [item.amount for item in items], [item.get_expiry() for item in items]


def _prefix() -> str:
    return f"{settings.KEFU_REDIS_PREFIX}:ratelimit"


# --- in this process: socket limits, and shared limits while Redis is away ----------------

class MovingWindows:
    """Moving windows counted in this process: for each (key, limit) the times of its last
    `amount` hits; a hit is refused when the oldest of them is still inside the window. Nothing
    runs between hits (`limits`' MemoryStorage re-arms a sweeper thread on every hit, started
    from the event loop); a socket's windows go with it (`forget`), and keys idle for longer
    than their windows are pruned as the table grows."""

    PRUNE_AT = 10_000  # keys

    def __init__(self) -> None:
        # key -> (limit name, amount, window s) -> (window s, its last `amount` hit times)
        self._hits: dict[str, dict[tuple[str, int, int], tuple[int, deque[float]]]] = {}
        self._prune_at = self.PRUNE_AT

    def hit(self, name: str, key: str, items: list[RateLimitItem]) -> int:
        """Count one hit: 0 when admitted, else the seconds until it would be (nothing counted)."""
        now = time.monotonic()
        mine = self._hits.setdefault(key, {})
        windows = []
        for item in items:
            expiry = item.get_expiry()
            window = mine.get((name, item.amount, expiry))
            if window is None:
                window = mine[(name, item.amount, expiry)] = (expiry, deque(maxlen=item.amount))
            windows.append(window)
        wait = max((hits[0] + expiry - now for expiry, hits in windows
                    if len(hits) == hits.maxlen and now - hits[0] < expiry), default=0.0)
        if wait > 0:
            return max(1, math.ceil(wait))
        for _, hits in windows:
            hits.append(now)
        if len(self._hits) >= self._prune_at:
            self._prune(now)
        return 0

    def forget(self, key: str) -> None:
        self._hits.pop(key, None)

    def _prune(self, now: float) -> None:
        """Drop the keys whose every window has emptied (each by its own length)."""
        idle = [key for key, mine in self._hits.items()
                if all(not hits or now - hits[-1] >= expiry for expiry, hits in mine.values())]
        for key in idle:
            del self._hits[key]
        self._prune_at = max(self.PRUNE_AT, 2 * len(self._hits))


def _socket_windows() -> MovingWindows:
    return runtime().get("ratelimit.sockets", MovingWindows)


def limit_forget(*, key: str) -> None:
    """The socket `key` is gone: drop its socket-limit windows."""
    _socket_windows().forget(key)


# --- the per-process fallback while Redis is away --------------------------------------------

# After a failure Redis is left alone this long: an unreachable host must not add its timeout
# to every request of an outage.
REDIS_RETRY_S = 2.0


def _fallback_windows() -> MovingWindows:
    return runtime().get("ratelimit.memory", MovingWindows)


def _in_memory(windows: MovingWindows, name: str, key: str, items: list[RateLimitItem]) -> LimitResult:
    wait = windows.hit(name, key, items)
    return LimitResult(limited=wait > 0, retry_after_s=wait)


def _redis_down_until() -> dict[str, float]:
    """REDIS_URL|prefix -> monotonic time to try Redis again (this process's)."""
    return runtime().get("ratelimit.redis_down_until", dict)


def _redis_usable(config: str) -> bool:
    return time.monotonic() >= _redis_down_until().get(config, 0.0)


def _redis_failed(config: str, name: str) -> None:
    _redis_down_until()[config] = time.monotonic() + REDIS_RETRY_S
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

def _sync_limiter() -> MovingWindowRateLimiter:
    return runtime().get(
        f"ratelimit.sync|{_config()}",
        lambda: MovingWindowRateLimiter(
            RedisStorage(settings.REDIS_URL, key_prefix=_prefix(),
                         connection_pool=sync_pool(settings.REDIS_URL, socket_timeout=5))
        ),
    )


def limit_check(*, name: str, key: str) -> LimitResult:
    """Count one hit of `name` for `key`; limited (with seconds to wait) when over any rate."""
    items = _items(name)
    if not items:
        return LimitResult(limited=False, retry_after_s=0)
    if name in SOCKET_LIMITS:
        return _in_memory(_socket_windows(), name, key, items)
    config = _config()
    if _redis_usable(config):
        try:
            return _check(_sync_limiter(), items, name, key)
        except _UNREACHABLE:
            _redis_failed(config, name)
    return _in_memory(_fallback_windows(), name, key, items)


# --- async (sockets) ------------------------------------------------------------------------

async def limit_hit(*, name: str, key: str) -> bool:
    """Count one hit of the socket limit `name` for `key` (a socket's id), in this process's
    memory; True when over the limit: the caller answers `rate_limited` and does not do the work."""
    items = _items(name)
    return bool(items) and _socket_windows().hit(name, key, items) > 0
