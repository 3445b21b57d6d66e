"""Fault tests start the processes they break themselves: web servers (uvicorn, as `make run`
serves), a private Redis they restart, and a TCP proxy in front of Postgres they cut."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.faults import PrivateRedis, TcpProxy


@pytest.fixture
def private_redis(tmp_path) -> Iterator[PrivateRedis]:
    server = PrivateRedis(tmp_path)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def postgres_proxy(transactional_db) -> Iterator[TcpProxy]:
    from django.db import connection

    proxy = TcpProxy(connection.settings_dict["HOST"] or "127.0.0.1", int(connection.settings_dict["PORT"]))
    yield proxy
    proxy.close()
