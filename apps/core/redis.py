"""Redis for short-lived shared state (socket slots, partial answers, stop flags, rate limits).

One asyncio client per event loop: redis.asyncio connections belong to the loop that made
them, and tests run each test in its own loop. The clients belong to the process's runtime
(apps/core/runtime.py), which closes them. Every key carries KEFU_REDIS_PREFIX.
"""

from __future__ import annotations

import redis
import redis.asyncio as aioredis
from django.conf import settings

from .runtime import runtime

# No CLIENT SETINFO on connect: redis-py otherwise reads its own version from the installed
# package metadata for every new connection (0.25 ms of the event loop each, measured) and
# sends two more commands; a burst of customers opens hundreds of connections at once.
CONNECTION_OPTIONS = {"driver_info": None}


# A loop's commands share a bounded pool and wait for a free connection instead of opening one
# more. Under a burst the loop reads replies late, so commands in flight pile up: a pool that
# grew on demand opened ~500 connections (and the channel layer's ~700) while 1,000 customers
# connected, each costing the loop about 0.75 ms to open (bench/ws_sessions.py, profiled).
POOL_SIZE = 64
POOL_WAIT_S = 15.0

# Sync clients are shared by threads, and Django runs each request's sync view in a thread of its
# own: a burst of requests holds as many connections at once. redis-py's plain pool then raises
# MaxConnectionsError past its cap (100 by default), which callers took for an outage; a
# blocking pool makes the excess wait for a free connection instead.
SYNC_POOL_SIZE = 64


def redis_async() -> aioredis.Redis:
    """The calling loop's Redis client (str responses), kept by the runtime per REDIS_URL.
    For short commands only: a blocking read (BLPOP) takes `redis_async_waits()`."""
    return _async_client("redis.async", blocking_pool=True)


def redis_async_waits() -> aioredis.Redis:
    """The calling loop's client for blocking reads (one connection each while it waits), apart
    from `redis_async()`'s pool so that waits never hold the connections frames need."""
    return _async_client("redis.async_waits", blocking_pool=False)


def _async_client(name: str, *, blocking_pool: bool) -> aioredis.Redis:
    url = settings.REDIS_URL

    def client() -> aioredis.Redis:
        options = {"decode_responses": True, "socket_timeout": 15, **CONNECTION_OPTIONS}
        if blocking_pool:
            pool = aioredis.BlockingConnectionPool.from_url(
                url, max_connections=POOL_SIZE, timeout=POOL_WAIT_S, **options
            )
        else:
            pool = aioredis.ConnectionPool.from_url(url, max_connections=1000, **options)
        return aioredis.Redis.from_pool(pool)  # closing the client closes its pool

    return runtime().loop_get(f"{name}|{url}", client, close=lambda c: c.aclose())


def redis_key(*parts: object) -> str:
    """`<KEFU_REDIS_PREFIX>:part:part...`"""
    return ":".join([settings.KEFU_REDIS_PREFIX, *(str(p) for p in parts)])


def redis_sync() -> redis.Redis:
    """A process-wide Redis client for sync code (tasks, services, on-commit hooks)."""
    url = settings.REDIS_URL
    return runtime().get(
        f"redis.sync|{url}",
        lambda: redis.Redis(connection_pool=sync_pool(url, socket_timeout=15, decode_responses=True)),
        close=lambda client: client.close(),
    )


def sync_pool(url: str, *, socket_timeout: float, **options: object) -> redis.BlockingConnectionPool:
    """A pool for a sync client shared by threads: at most SYNC_POOL_SIZE connections, and a
    command waits up to its socket timeout for a free one (then raises ConnectionError)."""
    return redis.BlockingConnectionPool.from_url(
        url, max_connections=SYNC_POOL_SIZE, timeout=socket_timeout, socket_timeout=socket_timeout,
        **CONNECTION_OPTIONS, **options,
    )
