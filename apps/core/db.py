"""Database work from async code, isolated per call.

Channels' `database_sync_to_async` is thread-sensitive: every ORM call of every socket of a
process runs on one thread, so one customer's locked row stalls everyone's acks (DESIGN.md,
known traps). `db_async` runs each call on a bounded pool of DB_THREADS threads instead; each
thread keeps its own persistent connection, so a process holds at most DB_THREADS Postgres
connections for its sockets and turns (size it against Postgres' max_connections:
WEB_CONCURRENCY x DB_THREADS + workers + admin).
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, TypeVar

from asgiref.sync import SyncToAsync
from django.conf import settings
from django.db import close_old_connections

P = ParamSpec("P")
R = TypeVar("R")

_executor: ThreadPoolExecutor | None = None


def db_executor() -> ThreadPoolExecutor:
    global _executor
    if _executor is None:
        _executor = ThreadPoolExecutor(max_workers=settings.DB_THREADS, thread_name_prefix="kefu-db")
    return _executor


def _with_connection_hygiene(fn: Callable[P, R]) -> Callable[P, R]:
    @functools.wraps(fn)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        # As Channels does per call: drop a connection that is broken or past CONN_MAX_AGE.
        close_old_connections()
        try:
            return fn(*args, **kwargs)
        finally:
            close_old_connections()

    return run


def db_async(fn: Callable[P, R]) -> Callable[P, Awaitable[R]]:
    """`await db_async(service)(**kwargs)`: run sync ORM code on the DB pool, not the loop."""
    return SyncToAsync(_with_connection_hygiene(fn), thread_sensitive=False, executor=db_executor())
