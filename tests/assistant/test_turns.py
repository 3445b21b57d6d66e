"""The turn runner through its public API, with real Postgres and Redis."""

import uuid

import pytest
from asgiref.sync import sync_to_async
from channels.layers import channel_layers, get_channel_layer
from django.db import connections

from apps.assistant import state
from apps.assistant.providers.builtin import DONT_KNOW
from apps.assistant.turns import turn_partial, turn_request, turn_stop, turns_settle
from apps.conversations.events import conversation_group
from apps.conversations.models import Message
from apps.conversations.services import conversation_request_human, message_receive
from tests.customers.factories import CustomerFactory

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
async def _isolated():
    channel_layers.backends.clear()
    yield
    await turns_settle()
    await sync_to_async(connections.close_all)()
    await get_channel_layer().close_pools()


async def ask(text="hello"):
    customer = await sync_to_async(CustomerFactory)()
    receipt = await sync_to_async(message_receive)(
        customer_id=customer.pk, client_msg_id=uuid.uuid4(), text=text
    )
    conversation_id = str(receipt.conversation.pk)
    layer = get_channel_layer()
    channel = await layer.new_channel()
    await layer.group_add(conversation_group(conversation_id), channel)
    return receipt, conversation_id, layer, channel


async def events_until_end(layer, channel):
    events = []
    while not events or events[-1]["type"] != "message_end":
        events.append((await layer.receive(channel))["event"])
    return events


async def test_answer_streams_tokens_then_message_then_message_end(settings):
    settings.ASSISTANT_TOKEN_DELAY_S = 0
    receipt, conversation_id, layer, channel = await ask()
    await turn_request(conversation_id=conversation_id)
    events = await events_until_end(layer, channel)

    tokens = [e for e in events if e["type"] == "token"]
    assert "".join(t["text"] for t in tokens) == DONT_KNOW
    assert [e["type"] for e in events[len(tokens):]] == ["message", "message_end"]
    assert [e["seq"] for e in events[len(tokens):]] == [2, 3]
    assert await turn_partial(conversation_id=conversation_id) is None
    assert await Message.objects.filter(role="assistant").acount() == 1


async def test_partial_holds_the_text_so_far_while_generating(settings):
    settings.ASSISTANT_TOKEN_DELAY_S = 0.2
    receipt, conversation_id, layer, channel = await ask()
    await turn_request(conversation_id=conversation_id)
    seen = ""
    while len(seen.split()) < 3:
        event = (await layer.receive(channel))["event"]
        seen += event["text"]
    message_id, text = await turn_partial(conversation_id=conversation_id)
    assert (message_id, text.startswith(seen)) == (event["message_id"], True)

    assert await turn_stop(conversation_id=conversation_id) is True
    events = await events_until_end(layer, channel)
    assert events[-1]["stopped"] is True
    assert DONT_KNOW.startswith(events[-1]["text"]) and events[-1]["text"] != DONT_KNOW


async def test_a_stop_flag_set_by_any_process_stops_the_answer(settings):
    settings.ASSISTANT_TOKEN_DELAY_S = 0.2
    receipt, conversation_id, layer, channel = await ask()
    await turn_request(conversation_id=conversation_id)
    first = (await layer.receive(channel))["event"]
    # What turn_stop does in another process: flag the answer named by the shared partial.
    assert await state.stop_request(conversation_id) is True
    events = await events_until_end(layer, channel)
    assert events[-1]["message_id"] == first["message_id"] and events[-1]["stopped"] is True


async def test_one_turn_at_a_time_per_conversation_and_every_question_answered(settings):
    settings.ASSISTANT_TOKEN_DELAY_S = 0.01
    receipt, conversation_id, layer, channel = await ask()
    await turn_request(conversation_id=conversation_id)
    # The second question arrives while the first answer streams (a question stored before the
    # turn starts is answered by that turn: it answers the newest one).
    first = (await layer.receive(channel))["event"]
    assert first["type"] == "token"
    await sync_to_async(message_receive)(customer_id=receipt.conversation.customer_id,
                                         client_msg_id=uuid.uuid4(), text="second")
    await turn_request(conversation_id=conversation_id)  # lock held: queued for the running loop
    ends = []
    while len(ends) < 2:
        event = (await layer.receive(channel))["event"]
        if event["type"] == "message_end":
            ends.append(event)
    assert await Message.objects.filter(role="assistant").acount() == 2
    assert ends[0]["message_id"] != ends[1]["message_id"]


async def test_no_answer_once_a_human_was_asked_for(settings):
    settings.ASSISTANT_TOKEN_DELAY_S = 0
    receipt, conversation_id, layer, channel = await ask()
    await sync_to_async(conversation_request_human)(conversation_id=conversation_id)
    await turn_request(conversation_id=conversation_id)
    await turns_settle()
    assert await Message.objects.filter(role="assistant").acount() == 0
    assert await turn_stop(conversation_id=conversation_id) is False
