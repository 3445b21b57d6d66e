from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async
from channels.layers import channel_layers, get_channel_layer
from django.db import connections

from apps.conversations.events import conversation_group


@pytest.fixture(autouse=True)
async def _close_thread_connections(thread_connections_closed):
    yield


@pytest.fixture
async def layer():
    channel_layers.backends.clear()
    yield get_channel_layer()
    await sync_to_async(connections.close_all)()
    await get_channel_layer().close_pools()


class Listener:
    """A socket's view of a conversation: the events its channel-layer group receives."""

    def __init__(self, layer, channel: str) -> None:
        self.layer, self.channel = layer, channel

    async def tool_events(self, count: int) -> list[dict]:
        events = []
        while len(events) < count:
            event = (await self.layer.receive(self.channel))["event"]
            if event["type"] == "tool":
                events.append(event)
        return events


@pytest.fixture
def listen(layer):
    async def subscribe(conversation_id) -> Listener:
        channel = await layer.new_channel()
        await layer.group_add(conversation_group(conversation_id), channel)
        return Listener(layer, channel)

    return subscribe
