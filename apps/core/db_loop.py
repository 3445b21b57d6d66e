"""Postgres on the event loop, for the one statement a customer waits on most: the chat ack.

Every other database call of a web process runs on apps/core/db.py's thread pools, through the
ORM. The chat message is one SQL function call in autocommit (apps/realtime/chat_queries.py), so it
skips the two thread hops: it runs on a few psycopg connections of the loop (psycopg's async
connections, like redis.asyncio's, belong to the loop that made them). Each hop wakes a
sleeping thread, and on a mostly idle machine the wake-ups are much of an ack's time.

The connections are made as Django makes its own: the same settings, adapters, time zone and
role, client-side binding and no prepared statements (poolers keep working). A process holds up
to DB_LOOP_CONNECTIONS of them besides its threads' (README, sizing).

Not psycopg_pool: its pools run worker tasks on the loop, and a loop that ends (each test's does)
cancels those before the pool can close, which left the connections open. These are made in
the caller's task and closed with the loop (apps/core/runtime.py), with nothing in between.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Sequence
from typing import Any

import psycopg
from django.conf import settings
from django.db import connections
from psycopg.pq import TransactionStatus

from .runtime import runtime


class LoopConnectionsUnavailable(psycopg.OperationalError):
    """No loop connection: none free within DB_LOOP_TIMEOUT_S, opening one failed less than
    RETRY_S ago, or DB_LOOP_CONNECTIONS is 0."""


# The loop's connection failed, or there was none: the caller may run its work on a thread.
LOOP_DB_ERRORS = (psycopg.OperationalError, psycopg.InterfaceError)

# After a failed open the loop leaves Postgres alone this long: while it is down or
# unreachable, the callers' thread path answers at once instead of each waiting here first.
RETRY_S = 2.0


class LoopConnections:
    """At most `size` autocommit connections for one event loop, opened on first need and
    kept while they are healthy and idle."""

    def __init__(self, size: int, timeout_s: float) -> None:
        self._size = size
        self._idle: list[psycopg.AsyncConnection] = []
        self._slots = asyncio.Semaphore(size)
        self._timeout_s = timeout_s
        self._closed = False
        self._down_until = 0.0

    @contextlib.asynccontextmanager
    async def connection(self) -> AsyncIterator[psycopg.AsyncConnection]:
        if self._size <= 0:
            raise LoopConnectionsUnavailable("DB_LOOP_CONNECTIONS is 0")
        if time.monotonic() < self._down_until:
            raise LoopConnectionsUnavailable("opening a loop connection failed moments ago")
        if self._slots.locked():  # wait_for costs a task: only when there is a wait
            try:
                await asyncio.wait_for(self._slots.acquire(), self._timeout_s)
            except TimeoutError:
                raise LoopConnectionsUnavailable(f"no loop connection free in {self._timeout_s} s") from None
        else:
            await self._slots.acquire()
        connection = None
        try:
            connection = self._idle.pop() if self._idle else await self._connect()
            yield connection
        finally:
            try:
                if connection is not None:
                    await self._put_back(connection)
            finally:
                self._slots.release()

    async def close(self) -> None:
        self._closed = True
        idle, self._idle = self._idle, []
        for connection in idle:
            await connection.close()

    async def _connect(self) -> psycopg.AsyncConnection:
        try:
            async with asyncio.timeout(self._timeout_s):
                connection = await psycopg.AsyncConnection.connect(**_connect_kwargs())
                await _configure(connection)
        except (TimeoutError, psycopg.Error) as exc:
            self._down_until = time.monotonic() + RETRY_S
            raise LoopConnectionsUnavailable(f"cannot open a loop connection: {exc!r}") from exc
        return connection

    async def _put_back(self, connection: psycopg.AsyncConnection) -> None:
        # Cancelled or failed mid-statement, its state is unknown: never reused.
        healthy = not connection.broken and connection.info.transaction_status == TransactionStatus.IDLE
        if healthy and not self._closed:
            self._idle.append(connection)
        else:
            await connection.close()


def _connect_kwargs() -> dict[str, Any]:
    params = connections["default"].get_connection_params()  # settings only, no connection
    params["cursor_factory"] = psycopg.AsyncClientCursor  # Django binds on the client too
    params["autocommit"] = True
    params.setdefault("application_name", "kefu-loop")  # told apart in pg_stat_activity
    return params


async def _configure(connection: psycopg.AsyncConnection) -> None:
    """What Django's `init_connection_state` does to its connections."""
    wrapper = connections["default"]
    timezone_name = wrapper.timezone_name
    if timezone_name and connection.info.parameter_status("TimeZone") != timezone_name:
        await connection.execute(wrapper.ops.set_time_zone_sql(), [timezone_name])
    if role := wrapper.settings_dict["OPTIONS"].get("assume_role"):
        await connection.execute(wrapper.ops.compose_sql("SET ROLE %s", [role]))


def _loop_connections() -> LoopConnections:
    return runtime().loop_get(
        "db.loop_connections",
        lambda: LoopConnections(settings.DB_LOOP_CONNECTIONS, settings.DB_LOOP_TIMEOUT_S),
        close=lambda pool: pool.close(),
    )


async def loop_fetchone(sql: str, params: Sequence[Any]) -> tuple[Any, ...] | None:
    """Run one statement in autocommit on one of the loop's connections; its first row. Raises
    psycopg's errors (`LOOP_DB_ERRORS` when the connection failed or none was free)."""
    async with _loop_connections().connection() as connection:
        cursor = await connection.execute(sql, params)
        return await cursor.fetchone()
