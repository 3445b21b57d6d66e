"""The queue listener builds entries only while some console listens (apps/console/queue.py
AgentsOnline): with nobody in the `agents` group a customer's message costs no entry query."""

from __future__ import annotations

import asyncio

import pytest
from asgiref.sync import sync_to_async
from channels.layers import channel_layers, get_channel_layer
from django.conf import settings
from django.db import connection, connections, transaction
from django.test.utils import CaptureQueriesContext

from apps.console.queue import queue_entries
from apps.conversations.events import (
    abroadcast_collected,
    conversation_group,
    deferred_with_listeners,
    event_emit,
)
from apps.conversations.publisher import Published
from apps.core.redis import redis_sync
from apps.core.runtime import runtime
from tests.support.factories import ConversationFactory

pytestmark = pytest.mark.django_db(transaction=True)


def _agents_group_clear() -> None:
    """Sockets of earlier tests that ended without leaving the group stay members for a day."""
    config = settings.CHANNEL_LAYERS["default"]["CONFIG"]
    redis_sync().delete(f"{config['prefix']}:group:agents")


@pytest.fixture(autouse=True)
async def _fresh_layer():
    channel_layers.backends.clear()  # channels-redis state must not cross test loops
    await sync_to_async(_agents_group_clear)()
    runtime().forget("console.agents_online")
    yield
    runtime().forget("console.agents_online")
    await sync_to_async(connections.close_all)()
    await get_channel_layer().close_pools()


def _entries_and_queries(conversation_id: str) -> tuple[list[Published], int]:
    batch = [Published(conversation_id, None, {"type": "queue_change", "conversation_id": conversation_id})]
    with CaptureQueriesContext(connection) as queries:
        entries = queue_entries(batch)
    return entries, len(queries)


async def test_no_console_listening_builds_no_entry_and_one_listening_gets_it() -> None:
    conversation = await sync_to_async(ConversationFactory)()
    cid = str(conversation.pk)

    entries, queries = await sync_to_async(_entries_and_queries)(cid)
    assert (entries, queries) == ([], 0)

    layer = get_channel_layer()
    channel = await layer.new_channel()
    await layer.group_add("agents", channel)  # a console socket connects
    entries, queries = await sync_to_async(_entries_and_queries)(cid)
    assert [e.wire["conversation"]["id"] for e in entries] == [cid] and queries == 1

    await layer.group_discard("agents", channel)
    runtime().forget("console.agents_online")  # past the second a "yes" is kept
    entries, _ = await sync_to_async(_entries_and_queries)(cid)
    assert entries == []


async def test_stored_answer_comes_back_with_its_queue_entry_and_nothing_is_sent_before() -> None:
    """An answer's store (apps/assistant/turn_store.py `turn_finish_deferred`) runs the queue
    listener on the same database thread: the loop gets the answer's events, then the entry
    showing it, and sends them in that order."""
    conversation = await sync_to_async(ConversationFactory)()
    cid = str(conversation.pk)
    layer = get_channel_layer()
    agents, customers = await layer.new_channel(), await layer.new_channel()
    await layer.group_add("agents", agents)
    await layer.group_add(conversation_group(cid), customers)

    def store_answer() -> None:
        with transaction.atomic():
            event_emit(conversation=conversation, type="handoff", payload={"state": "bot", "agent": None})

    _, events = await sync_to_async(deferred_with_listeners)(store_answer)

    assert [(e.wire["type"], e.conversation_id) for e in events] == [("handoff", cid), ("conversation", cid)]
    for channel in (agents, customers):  # nothing went out before the loop sends them
        await layer.send(channel, {"type": "marker"})
        assert (await asyncio.wait_for(layer.receive(channel), 5))["type"] == "marker"

    await abroadcast_collected(events)
    received = await asyncio.wait_for(layer.receive(customers), 5)
    assert received["event"]["type"] == "handoff"
    entry = await asyncio.wait_for(layer.receive(agents), 5)
    assert (entry["event"]["type"], entry["event"]["conversation"]["id"]) == ("conversation", cid)
