import pytest
from asgiref.sync import sync_to_async
from django.db import connections


@pytest.fixture(autouse=True)
async def _close_sync_thread_connection():
    """Async tests reach the ORM through asgiref's shared sync thread; close its connection so
    the test database can be dropped at the end of the run."""
    yield
    await sync_to_async(connections.close_all)()
