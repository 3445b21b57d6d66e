"""Fixtures that open chat and agent sockets to the ASGI app in this process, always closed (with
the assistant's turns settled) before the test database is flushed, and the per-loop state async
tests must not share."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from channels.layers import channel_layers, get_channel_layer
from django.db import connections

from apps.assistant.turns import turns_settle
from apps.customers.models import Customer
from tests.support.people import session_cookie, token_for
from tests.support.sockets import ORIGIN, AgentSocket, Chat, communicator


def fresh_channel_layer() -> None:
    """A new channel layer for this test's event loop: channels-redis keeps receive state
    (a lock, a count) that must not leak from one test's loop into the next."""
    channel_layers.backends.clear()


@pytest.fixture
async def isolated_async_state():
    """A fresh channel layer per test loop, and no database connection left open by asgiref's
    shared sync thread (async tests reach the ORM through it) when the database is flushed.
    Directories and modules that want it for every test request it with an autouse alias or
    `pytest.mark.usefixtures` (async: kept out of the browser tests' sync Playwright loop)."""
    fresh_channel_layer()
    yield
    await sync_to_async(connections.close_all)()
    await get_channel_layer().close_pools()


@pytest.fixture
async def thread_connections_closed():
    """Async tests' ORM calls run on asgiref's shared thread: close its connection afterwards,
    so the test database can be dropped."""
    yield
    await sync_to_async(connections.close_all)()


@pytest.fixture
async def chat(transactional_db) -> AsyncIterator[Callable[..., Awaitable[Chat]]]:
    """`await chat(customer)`: a socket that sent `auth` and got `ready` (`.ready`);
    `await chat()`: a connected socket that has not authenticated."""
    opened: list[Chat] = []

    async def open_chat(customer: Customer | None = None) -> Chat:
        socket = Chat()
        await socket.connect()
        opened.append(socket)
        if customer is not None:
            token = await sync_to_async(token_for)(customer)
            socket.ready = await socket.auth(token)
            assert socket.ready["type"] == "ready", socket.ready
        return socket

    yield open_chat
    for socket in opened:
        await socket.close()
    await turns_settle()


@pytest.fixture
async def agent_socket(transactional_db) -> AsyncIterator[Callable[..., Awaitable[AgentSocket]]]:
    """`await agent_socket(user)`: a connected console socket that received `agent_ready`."""
    opened: list[AgentSocket] = []

    async def open_socket(user: Any, origin: str | None = ORIGIN) -> AgentSocket:
        cookie = await sync_to_async(session_cookie)(user)
        comm = communicator(cookie, origin)
        connected, code = await comm.connect(timeout=10)
        assert connected, f"refused with {code}"
        socket = AgentSocket(comm)
        opened.append(socket)
        socket.ready = await socket.recv()
        assert socket.ready["type"] == "agent_ready", socket.ready
        return socket

    yield open_socket
    for socket in opened:
        await socket.close()
