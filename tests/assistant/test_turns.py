"""The durable turn runner through its public API, with real Postgres and Redis."""

import asyncio
import uuid
from datetime import timedelta

import pytest
from asgiref.sync import sync_to_async
from channels.layers import channel_layers, get_channel_layer
from django.db import connections
from django.utils import timezone

from apps.assistant import live_state, turn_store, turns
from apps.assistant.models import AssistantTurn, TurnState
from apps.assistant.phrases import phrase
from apps.assistant.providers.builtin import DONT_KNOW
from apps.assistant.turns import (
    TurnRunner,
    runner,
    turn_kick,
    turn_partial,
    turn_stop,
    turns_settle,
)
from apps.conversations.events import conversation_group
from apps.conversations.models import Message
from apps.conversations.services import conversation_request_human
from apps.core.acks_first import acking
from apps.realtime.chat_queries import message_receive_deferred
from tests.support.factories import CustomerFactory

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
async def _isolated():
    channel_layers.backends.clear()
    yield
    await turns_settle()
    await sync_to_async(connections.close_all)()
    await get_channel_layer().close_pools()


def _receive(customer_id, text):
    receipt, _ = message_receive_deferred(customer_id=customer_id, client_msg_id=uuid.uuid4(), text=text)
    return receipt


async def ask(text="hello"):
    """A stored customer question (its answer is due) and a channel in its conversation's group."""
    customer = await sync_to_async(CustomerFactory)()
    receipt = await sync_to_async(_receive)(customer.pk, text)
    conversation_id = str(receipt.conversation.pk)
    layer = get_channel_layer()
    channel = await layer.new_channel()
    await layer.group_add(conversation_group(conversation_id), channel)
    return receipt, conversation_id, layer, channel


async def events_until_end(layer, channel, ends=1):
    events = []
    while sum(e["type"] == "message_end" for e in events) < ends:
        events.append((await asyncio.wait_for(layer.receive(channel), 20))["event"])
    return events


def turns_of(conversation_id):
    return list(AssistantTurn.objects.filter(conversation_id=conversation_id).order_by("created_at"))


async def test_the_question_and_its_due_answer_are_stored_together():
    receipt, conversation_id, layer, channel = await ask()
    [turn] = await sync_to_async(turns_of)(conversation_id)
    assert (turn.state, turn.trigger_message_id, turn.attempts) == (TurnState.DUE, receipt.message.pk, 0)


async def test_answer_streams_tokens_then_message_then_message_end(settings):
    settings.ASSISTANT_TOKEN_DELAY_S = 0
    receipt, conversation_id, layer, channel = await ask()
    await turn_kick(conversation_id=conversation_id)
    events = await events_until_end(layer, channel)

    tokens = [e for e in events if e["type"] == "token"]
    assert "".join(t["text"] for t in tokens) == DONT_KNOW
    assert [(e["type"], e["seq"]) for e in events[len(tokens):]] == [("message", 2), ("message_end", 3)]
    [turn] = await sync_to_async(turns_of)(conversation_id)
    assert events[-1]["message_id"] == str(turn.message_id) and turn.state == TurnState.DONE
    assert await turn_partial(conversation_id=conversation_id) is None
    assert await Message.objects.filter(role="assistant").acount() == 1


async def test_tokens_are_coalesced_and_the_first_is_not_delayed(settings):
    settings.ASSISTANT_TOKEN_DELAY_S = 0.01  # ~100 words per second from the provider
    settings.ASSISTANT_TOKEN_FLUSH_S = 0.5
    receipt, conversation_id, layer, channel = await ask()
    await turn_kick(conversation_id=conversation_id)
    events = await events_until_end(layer, channel)

    tokens = [e for e in events if e["type"] == "token"]
    words = DONT_KNOW.split(" ")
    assert tokens[0]["text"] == words[0] + " "  # sent as soon as it was generated
    assert len(tokens) < len(words)  # the rest came in fewer, larger frames
    assert "".join(t["text"] for t in tokens) == DONT_KNOW == events[-1]["text"]


async def test_an_answer_is_not_claimed_while_a_customer_on_its_loop_waits_for_an_ack(settings):
    settings.ASSISTANT_TOKEN_DELAY_S = 0
    receipt, conversation_id, layer, channel = await ask()
    with acking():
        await turn_kick(conversation_id=conversation_id)
        await asyncio.sleep(0.5)
        [turn] = await sync_to_async(turns_of)(conversation_id)
        assert (turn.state, turn.attempts) == (TurnState.DUE, 0)
    events = await events_until_end(layer, channel)
    assert "".join(e["text"] for e in events if e["type"] == "token") == DONT_KNOW


async def test_acks_that_never_settle_delay_an_answer_by_the_cap_only(settings, monkeypatch):
    settings.ASSISTANT_TOKEN_DELAY_S = 0
    monkeypatch.setattr(turns, "ACKS_FIRST_MAX_S", 0.3)
    receipt, conversation_id, layer, channel = await ask()
    with acking():  # an ack pending all along: answers still go out
        await turn_kick(conversation_id=conversation_id)
        events = await events_until_end(layer, channel)
    assert [e["type"] for e in events][-2:] == ["message", "message_end"]


async def test_partial_holds_the_text_so_far_and_stop_ends_the_answer(settings):
    settings.ASSISTANT_TOKEN_DELAY_S = 0.2
    settings.ASSISTANT_TOKEN_FLUSH_S = 0
    receipt, conversation_id, layer, channel = await ask()
    await turn_kick(conversation_id=conversation_id)
    seen = ""
    while len(seen.split()) < 3:
        event = (await layer.receive(channel))["event"]
        seen += event["text"]
    message_id, text = await turn_partial(conversation_id=conversation_id)
    assert (message_id, text.startswith(seen)) == (event["message_id"], True)

    assert len(await turn_stop(conversation_id=conversation_id)) == 1
    events = await events_until_end(layer, channel)
    assert events[-1]["stopped"] is True
    assert DONT_KNOW.startswith(events[-1]["text"]) and events[-1]["text"] != DONT_KNOW


async def test_a_stop_flag_set_by_another_process_stops_the_answer(settings):
    settings.ASSISTANT_TOKEN_DELAY_S = 0.2
    receipt, conversation_id, layer, channel = await ask()
    await turn_kick(conversation_id=conversation_id)
    first = (await layer.receive(channel))["event"]
    # What turn_stop does in another process: the flag in Postgres, then the Redis fast path.
    turn_ids = await sync_to_async(turn_store.turns_stop)(conversation_id=conversation_id)
    await live_state.stop_flags_set(turn_ids)
    events = await events_until_end(layer, channel)
    assert events[-1]["message_id"] == first["message_id"] and events[-1]["stopped"] is True


async def test_a_stop_before_the_answer_started_ends_it_with_no_text(settings):
    receipt, conversation_id, layer, channel = await ask()
    await turn_stop(conversation_id=conversation_id)  # nothing runs it yet: it is only due
    events = await events_until_end(layer, channel)
    assert [(e["type"], e.get("text"), e.get("stopped")) for e in events] == [
        ("message", None, None),
        ("message_end", "", True),
    ]
    assert events[0]["message"]["text"] == "" and events[0]["message"]["role"] == "assistant"


async def test_over_the_answers_per_hour_the_runner_declines_without_tokens_or_a_partial_left(settings):
    settings.ASSISTANT_TOKEN_DELAY_S = 0
    settings.RATELIMIT_ANSWER_CUSTOMER_HOUR = "1/hour"
    receipt, conversation_id, layer, channel = await ask()
    await turn_kick(conversation_id=conversation_id)
    first = await events_until_end(layer, channel)
    await sync_to_async(_receive)(receipt.conversation.customer_id, "and again?")
    await turn_kick(conversation_id=conversation_id)
    events = await events_until_end(layer, channel)

    assert any(e["type"] == "token" for e in first)
    second = [e for e in events if e["type"] != "message" or e["message"]["role"] == "assistant"]
    assert [e["type"] for e in second] == ["message", "message_end"]  # no token, no partial
    assert (second[-1]["text"], second[-1]["outcome"]) == (
        phrase("over_limit", receipt.conversation.language), "declined")
    assert await turn_partial(conversation_id=conversation_id) is None  # the one started meanwhile: gone


async def test_an_answer_whose_live_partial_is_refused_still_streams_and_ends_whole(settings, monkeypatch):
    # Redis refuses the partial's first write (a restart, a blip): live state is best effort,
    # so the customer still gets every token and the whole answer, not the apology.
    import redis

    async def refused(conversation_id, message_id):
        raise redis.ConnectionError("Connection refused")

    monkeypatch.setattr(live_state, "partial_start", refused)
    settings.ASSISTANT_TOKEN_DELAY_S = 0
    receipt, conversation_id, layer, channel = await ask()
    await turn_kick(conversation_id=conversation_id)
    events = await events_until_end(layer, channel)

    tokens = "".join(e["text"] for e in events if e["type"] == "token")
    end = events[-1]
    assert tokens and tokens == end["text"]
    assert end["text"] != phrase("apology", receipt.conversation.language)
    assert await turn_partial(conversation_id=conversation_id) is None  # cleared at the end


async def test_one_answer_at_a_time_per_conversation_and_every_question_answered(settings):
    settings.ASSISTANT_TOKEN_DELAY_S = 0.01
    receipt, conversation_id, layer, channel = await ask()
    await turn_kick(conversation_id=conversation_id)
    first = (await layer.receive(channel))["event"]
    assert first["type"] == "token"
    await sync_to_async(_receive)(receipt.conversation.customer_id, "second")  # while the first streams
    await turn_kick(conversation_id=conversation_id)
    events = await events_until_end(layer, channel, ends=2)

    ends = [e for e in events if e["type"] == "message_end"]
    assert [e["seq"] for e in events if "seq" in e] == [3, 4, 5, 6]  # message 2 was the second question
    assert ends[0]["message_id"] == first["message_id"] != ends[1]["message_id"]
    assert await Message.objects.filter(role="assistant").acount() == 2


async def test_after_an_answer_nothing_is_claimed_until_the_next_kick(settings, monkeypatch):
    # The customer has the answer and is about to send the next message: a claim now would
    # only slow its ack (bench/ws_sessions.py).
    claims = []  # of this conversation (the sweep's, every SWEEP_S, ask for any)
    real_claim = turns._claim_next

    def counted(**kw):
        if kw["conversation_id"] is not None:
            claims.append(kw["conversation_id"])
        return real_claim(**kw)

    monkeypatch.setattr(turns, "_claim_next", counted)
    receipt, conversation_id, layer, channel = await ask()
    await turn_kick(conversation_id=conversation_id)
    await events_until_end(layer, channel)
    await asyncio.sleep(0.3)
    assert claims == [conversation_id]

    await sync_to_async(_receive)(receipt.conversation.customer_id, "second")
    await turn_kick(conversation_id=conversation_id)
    await events_until_end(layer, channel)
    assert claims == [conversation_id] * 2


async def test_a_question_stored_through_another_process_while_an_answer_streams_is_answered_next(settings):
    # Its socket's kick went to that process's runner, which could not claim it behind the
    # running answer; this runner's sweep answers it once its grace is over.
    settings.ASSISTANT_TOKEN_DELAY_S = 0.01
    receipt, conversation_id, layer, channel = await ask()
    await turn_kick(conversation_id=conversation_id)
    assert (await layer.receive(channel))["event"]["type"] == "token"
    await sync_to_async(_receive)(receipt.conversation.customer_id, "second")  # no kick here
    events = await events_until_end(layer, channel, ends=2)

    ends = [e for e in events if e["type"] == "message_end"]
    assert len(ends) == 2 and ends[0]["message_id"] != ends[1]["message_id"]
    assert [e["seq"] for e in events if "seq" in e] == [3, 4, 5, 6]


async def test_a_stop_reaches_the_answer_queued_behind_the_running_one(settings):
    settings.ASSISTANT_TOKEN_DELAY_S = 0.2
    receipt, conversation_id, layer, channel = await ask()
    await turn_kick(conversation_id=conversation_id)
    await layer.receive(channel)  # the first answer streams
    await sync_to_async(_receive)(receipt.conversation.customer_id, "second")
    assert len(await turn_stop(conversation_id=conversation_id)) == 2
    events = await events_until_end(layer, channel, ends=2)
    ends = [e for e in events if e["type"] == "message_end"]
    assert [e["stopped"] for e in ends] == [True, True] and ends[1]["text"] == ""


async def test_no_answer_once_a_human_was_asked_for(settings):
    settings.ASSISTANT_TOKEN_DELAY_S = 0
    receipt, conversation_id, layer, channel = await ask()
    await sync_to_async(conversation_request_human)(conversation_id=conversation_id)
    await turn_kick(conversation_id=conversation_id)
    await turns_settle()
    assert await Message.objects.filter(role="assistant").acount() == 0
    [turn] = await sync_to_async(turns_of)(conversation_id)
    assert turn.state == TurnState.DONE


async def test_a_turn_whose_runner_died_is_taken_over_and_answered_once(settings):
    settings.ASSISTANT_TOKEN_DELAY_S = 0
    receipt, conversation_id, layer, channel = await ask()
    # A runner in a process that died: it claimed the turn, then stopped renewing its lease.
    await sync_to_async(turn_store.turn_claim)(owner="dead-process", conversation_id=conversation_id)
    await AssistantTurn.objects.filter(conversation_id=conversation_id).aupdate(
        lease_until=timezone.now() - timedelta(seconds=1)
    )
    runner()  # this process's runner sweeps for lapsed leases
    events = await events_until_end(layer, channel)

    [turn] = await sync_to_async(turns_of)(conversation_id)
    assert events[0] == {"type": "partial", "conversation_id": conversation_id,
                         "message_id": str(turn.message_id), "text": ""}  # the answer restarts
    assert [(e["type"], e["seq"]) for e in events if "seq" in e] == [("message", 2), ("message_end", 3)]
    assert (turn.state, turn.attempts) == (TurnState.DONE, 2)
    # The dead runner, were it to wake up, cannot store a second answer.
    assert await sync_to_async(turn_store.turn_finish)(
        turn_id=str(turn.pk), owner="dead-process", text="late", citations=[], stopped=False
    ) is None
    assert await Message.objects.filter(role="assistant").acount() == 1


async def test_handover_gives_running_turns_back_to_other_runners(settings):
    settings.ASSISTANT_TOKEN_DELAY_S = 0.2
    receipt, conversation_id, layer, channel = await ask()
    leaving = TurnRunner()
    leaving.kick(conversation_id)
    await layer.receive(channel)  # it streams
    await leaving.handover()
    [turn] = await sync_to_async(turns_of)(conversation_id)
    assert (turn.state, turn.owner, turn.lease_until) == (TurnState.DUE, "", None)

    runner()  # another runner picks it up at its next sweep and answers it whole
    events = await events_until_end(layer, channel)
    assert events[-1]["stopped"] is False and events[-1]["text"] == DONT_KNOW
    assert await Message.objects.filter(role="assistant").acount() == 1
