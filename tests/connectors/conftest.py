from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async
from channels.layers import channel_layers, get_channel_layer
from django.db import connections

from apps.connectors.demo import demo_connectors_setup
from apps.conversations.events import conversation_group
from apps.conversations.models import Conversation
from apps.customers.services import customer_identified_get_or_create
from tests.customers.factories import CustomerFactory
from tests.demo_crm.service import demo_crm, demo_crm_process  # noqa: F401 (fixtures)


@pytest.fixture(autouse=True)
async def _close_thread_connections():
    """Async tests' ORM calls run on asgiref's shared thread: close its connection afterwards,
    so the test database can be dropped."""
    yield
    await sync_to_async(connections.close_all)()


@pytest.fixture
def demo_connector(demo_crm, transactional_db, settings):  # noqa: F811
    settings.DEMO_CRM_TOKEN = "demo-crm-test-token"
    return demo_connectors_setup(base_url=demo_crm.url)


@pytest.fixture
def ada(transactional_db):
    return customer_identified_get_or_create(
        external_id="demo-customer-1", name="Ada Lovelace", email="ada@example.com"
    )


@pytest.fixture
def anonymous_customer(transactional_db):
    return CustomerFactory(external_id=None)


@pytest.fixture
def conversation_of():
    def make(customer) -> Conversation:
        return Conversation.objects.create(customer=customer)

    return make


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
