"""Chat tests use the shared fixtures (tests/support: customers, `chat` sockets); every test here
gets a fresh channel layer and no leftover ORM connection."""

import pytest


@pytest.fixture(autouse=True)
async def _isolated_async_state(isolated_async_state):
    yield
