"""Readiness checks behind GET /healthz: each returns None when fine, else what failed."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from dataclasses import dataclass, field

import redis
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings
from django.db import connection

from .runtime import runtime

CHECK_TIMEOUT_S = 2.0
# A broadcast waits its whole timeout for replies, so this one bounds /healthz latency.
WORKER_REPLY_TIMEOUT_S = 1.0
FAILURE_CACHE_S = 2.0


def check_database() -> str | None:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception as exc:  # any driver error means "not ready"
        return f"{type(exc).__name__}: {exc}".strip()
    finally:
        connection.close_if_unusable_or_obsolete()
    return None


def check_redis() -> str | None:
    try:
        client = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=CHECK_TIMEOUT_S,
                                      socket_connect_timeout=CHECK_TIMEOUT_S)
        client.ping()
        client.close()
    except redis.RedisError as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


async def check_channel_layer() -> str | None:
    layer = get_channel_layer()
    if layer is None:
        return "no channel layer configured"
    probe = {"type": "health.probe", "nonce": uuid.uuid4().hex}
    try:
        channel = await layer.new_channel()
        await asyncio.wait_for(layer.send(channel, probe), CHECK_TIMEOUT_S)
        received = await asyncio.wait_for(layer.receive(channel), CHECK_TIMEOUT_S)
    except Exception as exc:  # connection refused, timeouts, ...
        return f"{type(exc).__name__}: {exc}".strip()
    return None if received == probe else "channel layer returned another message"


# A worker ping is a broadcast that waits its whole timeout: /healthz polled every second by
# every load balancer must not send one per request. One answer serves this process for
# HEALTHZ_CELERY_CACHE_S seconds (kept by the runtime); the lock lets one request at a time ask.
@dataclass
class _CeleryCache:
    lock: threading.Lock = field(default_factory=threading.Lock)
    cached: tuple[float, str | None] | None = None  # (monotonic expiry, result)


def _celery_cache() -> _CeleryCache:
    return runtime().get("health.celery", _CeleryCache)


def celery_check_cache_clear() -> None:
    _celery_cache().cached = None


def check_celery() -> str | None:
    cache = _celery_cache()
    with cache.lock:
        if cache.cached is not None and cache.cached[0] > time.monotonic():
            return cache.cached[1]
        result = _check_celery_uncached()
        # A failure is kept briefly, so a worker that starts is seen within seconds.
        keep_s = settings.HEALTHZ_CELERY_CACHE_S
        if result is not None:
            keep_s = min(keep_s, FAILURE_CACHE_S)
        cache.cached = (time.monotonic() + keep_s, result)
        return result


def _check_celery_uncached() -> str | None:
    """A worker consumes each of Kefu's task queues (a worker on another queue is no help)."""
    from config.celery import app, celery_queues

    try:
        # A broadcast, not inspect(): inspect merges replies by node name, and workers started
        # without -n on one host all answer as celery@<host>, so one would hide the others.
        replies = app.control.broadcast("active_queues", reply=True, timeout=WORKER_REPLY_TIMEOUT_S) or []
    except Exception as exc:  # broker down
        return f"{type(exc).__name__}: {exc}".strip()
    consumed = {q.get("name") for reply in replies for queues in reply.values() for q in queues or []}
    missing = [queue for queue in celery_queues() if queue not in consumed]
    if not missing:
        return None
    return "; ".join(f"no Celery worker consuming queue {queue!r} answered" for queue in missing)


async def run_checks() -> dict[str, str]:
    """All checks, run concurrently: name -> "ok" or the failure."""
    results = await asyncio.gather(
        sync_to_async(check_database)(),
        sync_to_async(check_redis, thread_sensitive=False)(),
        check_channel_layer(),
        sync_to_async(check_celery, thread_sensitive=False)(),
    )
    names = ["database", "redis", "channel_layer", "celery"]
    return {name: (failure or "ok") for name, failure in zip(names, results, strict=True)}
