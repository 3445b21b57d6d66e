import pytest
from asgiref.sync import sync_to_async
from channels.layers import channel_layers, get_channel_layer
from django.db import connections


@pytest.fixture(autouse=True)
async def _close_sync_thread_connection():
    """Async tests reach the ORM through asgiref's shared sync thread; close its connection so
    the test database can be dropped at the end of the run."""
    channel_layers.backends.clear()  # channels-redis state must not cross test loops
    yield
    await sync_to_async(connections.close_all)()
    await get_channel_layer().close_pools()
