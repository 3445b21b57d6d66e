"""Fixtures for chat tests: customers with widget tokens, and connected chat sockets that are
always closed, with the assistant's turns settled, before the test database is flushed."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from asgiref.sync import sync_to_async
from channels.layers import channel_layers, get_channel_layer
from django.db import connections

from apps.assistant.turns import turns_settle
from apps.customers.models import Customer
from apps.customers.tokens import widget_token_issue
from tests.customers.factories import CustomerFactory
from tests.realtime.chat import Chat


def fresh_channel_layer() -> None:
    """A new channel layer for this test's event loop: channels-redis keeps receive state
    (a lock, a count) that must not leak from one test's loop into the next."""
    channel_layers.backends.clear()


def token_for(customer: Customer) -> str:
    return widget_token_issue(customer_id=customer.pk)[0]


@pytest.fixture
def customer(transactional_db) -> Customer:
    return CustomerFactory(name="Ada")


@pytest.fixture
def other_customer(transactional_db) -> Customer:
    return CustomerFactory(name="Grace")


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


@pytest.fixture(autouse=True)
async def _isolated_async_state():
    """A fresh channel layer per test loop, and no database connection left open by asgiref's
    shared sync thread (async tests reach the ORM through it) when the database is flushed."""
    fresh_channel_layer()
    yield
    await sync_to_async(connections.close_all)()
    await get_channel_layer().close_pools()
