"""The agents' queue hears of each change once: counted at the channel layer (the `agents`
group every console joins), as Zulip's capture_send_event_calls counts its events."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from channels.layers import channel_layers, get_channel_layer
from django.db import connections

from apps.console import services
from apps.conversations.models import Conversation
from apps.conversations.services import message_create
from tests.support.factories import ConversationFactory, CustomerFactory

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
async def _fresh_layer():
    channel_layers.backends.clear()  # channels-redis state must not cross test loops
    yield
    await sync_to_async(connections.close_all)()
    await get_channel_layer().close_pools()


async def _agents_channel() -> tuple[Any, str]:
    layer = get_channel_layer()
    channel = await layer.new_channel()
    await layer.group_add("agents", channel)
    return layer, channel


async def _drain(layer: Any, channel: str) -> list[dict[str, Any]]:
    """Every message sent to the channel so far: a marker sent now arrives after them."""
    await layer.send(channel, {"type": "marker"})
    received = []
    while (message := await layer.receive(channel))["type"] != "marker":
        received.append(message)
    return received


def _queue_entries(messages: list[dict[str, Any]], conversation: Conversation) -> list[dict[str, Any]]:
    return [
        m["event"]["conversation"]
        for m in messages
        if m["type"] == "console.event"
        and m["event"]["type"] == "conversation"
        and m["event"]["conversation"]["id"] == str(conversation.pk)
    ]


@sync_to_async
def _assigned_conversation(agent: Any) -> Conversation:
    conversation = ConversationFactory(customer=CustomerFactory(), state="human", assignee=agent)
    message_create(
        conversation=conversation, role="customer", text="Where is my order?", client_msg_id=uuid.uuid4()
    )
    return conversation


async def test_one_agent_reply_broadcasts_its_queue_entry_once(agent) -> None:
    conversation = await _assigned_conversation(agent)
    layer, channel = await _agents_channel()
    await _drain(layer, channel)

    await sync_to_async(services.agent_reply)(
        conversation_id=conversation.pk, agent=agent, client_msg_id=uuid.uuid4(), text="On its way."
    )

    [entry] = _queue_entries(await _drain(layer, channel), conversation)
    # Built after the commit: it shows the reply and the read mark that came with it.
    assert (entry["last_message"]["text"], entry["unread"]) == ("On its way.", 0)
    await layer.group_discard("agents", channel)


async def test_an_assignment_broadcasts_its_queue_entry_once(agent, other_agent) -> None:
    conversation = await _assigned_conversation(agent)
    layer, channel = await _agents_channel()
    await _drain(layer, channel)

    await sync_to_async(services.conversation_assign)(
        conversation_id=conversation.pk, agent_id=other_agent.pk, by=agent
    )

    [entry] = _queue_entries(await _drain(layer, channel), conversation)
    assert entry["assignee"] == {"id": other_agent.pk, "name": "Bob Agent"}
    await layer.group_discard("agents", channel)


async def test_a_note_reaches_the_conversations_agents_and_no_customer_group(agent) -> None:
    conversation = await _assigned_conversation(agent)
    layer = get_channel_layer()
    agents_conv, conv, agents = [await layer.new_channel() for _ in range(3)]
    await layer.group_add(f"agents.conv.{conversation.pk}", agents_conv)
    await layer.group_add(f"conv.{conversation.pk}", conv)
    await layer.group_add("agents", agents)

    note, _ = await sync_to_async(services.note_create)(
        conversation_id=conversation.pk, agent=agent, client_msg_id=uuid.uuid4(), text="VIP customer"
    )

    [message] = await _drain(layer, agents_conv)
    assert message["event"]["type"] == "note" and message["event"]["note"]["id"] == str(note.pk)
    assert await _drain(layer, conv) == []
    assert await _drain(layer, agents) == []
    await layer.group_discard(f"agents.conv.{conversation.pk}", agents_conv)
    await layer.group_discard(f"conv.{conversation.pk}", conv)
    await layer.group_discard("agents", agents)
