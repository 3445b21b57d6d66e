import pytest


@pytest.fixture(autouse=True)
async def _close_sync_thread_connection(isolated_async_state):
    """Async tests reach the ORM through asgiref's shared sync thread; close its connection so
    the test database can be dropped at the end of the run (and a fresh channel layer per loop)."""
    yield
