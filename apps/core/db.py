"""Database work from async code, isolated per call.

Channels' `database_sync_to_async` is thread-sensitive: every ORM call of every socket of a
process runs on one thread, so one customer's locked row stalls everyone's acks (DESIGN.md,
known traps). Here each call runs on a bounded thread pool instead, each thread keeping its own
persistent connection:

- `db_async(fn)`: what a client waits for (socket frames, webhook intake): DB_THREADS threads;
- `db_async_work(fn)`: background work (answer turns, event listeners): DB_WORK_THREADS threads,
  so a burst of answers never queues ahead of the next customer's `ack`.

A process holds at most DB_THREADS + DB_WORK_THREADS Postgres connections for these, and
DB_LOOP_CONNECTIONS more on its event loop for the chat message's one statement
(apps/core/db_loop.py); size Postgres' max_connections as WEB_CONCURRENCY x that + Celery
workers + admin.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, TypeVar

from asgiref.sync import SyncToAsync
from django.conf import settings
from django.db import InterfaceError, OperationalError, close_old_connections, connections

from .runtime import runtime

P = ParamSpec("P")
R = TypeVar("R")

def _executor(name: str, size: int) -> ThreadPoolExecutor:
    """The process's pool `name`, kept by the runtime (shut down, not waited for, at stop)."""
    return runtime().get(
        f"db.{name}",
        lambda: ThreadPoolExecutor(max_workers=size, thread_name_prefix=f"kefu-{name}"),
        close=lambda pool: pool.shutdown(wait=False),
    )


def _isolated(fn: Callable[P, R]) -> Callable[P, R]:
    @functools.wraps(fn)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        # As Channels does per call: drop a connection that failed or passed CONN_MAX_AGE.
        close_old_connections()
        connection = connections["default"]
        # No `SELECT 1` health check before every call (a round trip on every frame): a
        # connection that died meanwhile (Postgres restarted) shows up as an error instead, and
        # the call runs once more on a new one. Every call made through here is a read or
        # idempotent (messages on client_msg_id, stops, handoffs), so running it again is safe.
        connection.health_check_done = True
        try:
            return fn(*args, **kwargs)
        except (OperationalError, InterfaceError):
            if connection.in_atomic_block or connection.connection is None or connection.is_usable():
                raise
            connection.close()
            return fn(*args, **kwargs)
        finally:
            close_old_connections()

    return run


def db_async(fn: Callable[P, R]) -> Callable[P, Awaitable[R]]:
    """`await db_async(service)(**kwargs)`: what a client is waiting for, on the frames pool."""
    executor = _executor("db", settings.DB_THREADS)
    return SyncToAsync(_isolated(fn), thread_sensitive=False, executor=executor)


def db_async_work(fn: Callable[P, R]) -> Callable[P, Awaitable[R]]:
    """Background database work (answers, listeners), on its own pool."""
    executor = _executor("db-work", settings.DB_WORK_THREADS)
    return SyncToAsync(_isolated(fn), thread_sensitive=False, executor=executor)
