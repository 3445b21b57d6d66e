"""The event loop's own Postgres connections (apps/core/db_loop.py): reused, bounded, replaced
when they break, and closed with their loop."""

from __future__ import annotations

import asyncio
import time

import pytest
from asgiref.sync import sync_to_async
from django.db import connection

from apps.core import db_loop
from apps.core.db_loop import LOOP_DB_ERRORS, LoopConnectionsUnavailable, loop_fetchone

pytestmark = pytest.mark.django_db(transaction=True)

PID = "SELECT pg_backend_pid()"


def backend_alive(pid: int) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = %s", [pid])
        return cursor.fetchone()[0] == 1


def terminate(pid: int) -> None:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_terminate_backend(%s)", [pid])
    finally:
        connection.close()  # this helper thread's own, or the test database stays in use


def gone_within(pid: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while backend_alive(pid):  # a backend leaves shortly after its client hangs up
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def test_statements_share_a_connection_that_closes_with_its_loop():
    async def two_statements() -> list[int]:
        return [(await loop_fetchone(PID, []))[0] for _ in range(2)]

    first, second = asyncio.run(two_statements())

    assert first == second
    assert gone_within(first, 5)


async def test_a_connection_that_broke_fails_its_statement_and_the_next_one_reconnects():
    (pid,) = await loop_fetchone(PID, [])
    await sync_to_async(terminate)(pid)

    with pytest.raises(LOOP_DB_ERRORS):
        await loop_fetchone(PID, [])
    (replacement,) = await loop_fetchone(PID, [])

    assert replacement != pid


async def test_no_more_connections_than_set_and_a_caller_gives_up_waiting(settings):
    settings.DB_LOOP_CONNECTIONS = 1
    settings.DB_LOOP_TIMEOUT_S = 0.2
    busy = asyncio.create_task(loop_fetchone("SELECT pg_sleep(1)", []))
    await asyncio.sleep(0.05)

    with pytest.raises(LoopConnectionsUnavailable):
        await loop_fetchone(PID, [])
    await busy
    assert await loop_fetchone("SELECT 1", []) == (1,)



async def test_none_configured_is_unavailable_at_once(settings):
    settings.DB_LOOP_CONNECTIONS = 0

    with pytest.raises(LoopConnectionsUnavailable, match="DB_LOOP_CONNECTIONS is 0"):
        await loop_fetchone(PID, [])


async def test_after_a_failed_open_postgres_is_left_alone_for_a_moment(monkeypatch):
    from apps.devstack.embedded.ports import free_port

    attempts = []

    def unreachable() -> dict:
        attempts.append(1)
        return {"host": "127.0.0.1", "port": free_port(), "dbname": "kefu", "connect_timeout": 2}

    monkeypatch.setattr(db_loop, "_connect_kwargs", unreachable)
    with pytest.raises(LoopConnectionsUnavailable, match="cannot open"):
        await loop_fetchone(PID, [])
    with pytest.raises(LoopConnectionsUnavailable, match="failed moments ago"):
        await loop_fetchone(PID, [])  # the thread path answers meanwhile

    assert attempts == [1]
