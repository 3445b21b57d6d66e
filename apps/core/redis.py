"""Redis for short-lived shared state (socket slots, partial answers, stop flags, rate limits).

One asyncio client per event loop: redis.asyncio connections belong to the loop that made
them, and tests run each test in its own loop. Every key carries KEFU_REDIS_PREFIX.
"""

from __future__ import annotations

import asyncio
import weakref

import redis
import redis.asyncio as aioredis
from django.conf import settings

_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, aioredis.Redis] = weakref.WeakKeyDictionary()


def redis_async() -> aioredis.Redis:
    """The calling loop's Redis client (str responses)."""
    loop = asyncio.get_running_loop()
    client = _clients.get(loop)
    if client is None:
        client = aioredis.Redis.from_url(
            settings.REDIS_URL, decode_responses=True, socket_timeout=15, max_connections=500
        )
        _clients[loop] = client
    return client


def redis_key(*parts: object) -> str:
    """`<KEFU_REDIS_PREFIX>:part:part...`"""
    return ":".join([settings.KEFU_REDIS_PREFIX, *(str(p) for p in parts)])


_sync_client: redis.Redis | None = None


def redis_sync() -> redis.Redis:
    """A process-wide Redis client for sync code (tasks, services, on-commit hooks)."""
    global _sync_client
    if _sync_client is None:
        _sync_client = redis.Redis.from_url(
            settings.REDIS_URL, decode_responses=True, socket_timeout=15, max_connections=200
        )
    return _sync_client
