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


def redis_async() -> aioredis.Redis:
    """The calling loop's Redis client (str responses), kept by the runtime per REDIS_URL."""
    url = settings.REDIS_URL
    return runtime().loop_get(
        f"redis.async|{url}",
        lambda: aioredis.Redis.from_url(url, decode_responses=True, socket_timeout=15, max_connections=500,
                                             **CONNECTION_OPTIONS),
        close=lambda client: client.aclose(),
    )


def redis_key(*parts: object) -> str:
    """`<KEFU_REDIS_PREFIX>:part:part...`"""
    return ":".join([settings.KEFU_REDIS_PREFIX, *(str(p) for p in parts)])


def redis_sync() -> redis.Redis:
    """A process-wide Redis client for sync code (tasks, services, on-commit hooks)."""
    url = settings.REDIS_URL
    return runtime().get(
        f"redis.sync|{url}",
        lambda: redis.Redis.from_url(url, decode_responses=True, socket_timeout=15, max_connections=200,
                                       **CONNECTION_OPTIONS),
        close=lambda client: client.close(),
    )
