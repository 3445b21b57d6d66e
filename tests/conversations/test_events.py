"""The event gate: seq assignment, durable storage, broadcast on commit only."""

import subprocess
import sys
import threading

import pytest
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from django.db import close_old_connections, transaction

from apps.conversations.events import (
    abroadcast_deferred,
    broadcasts_deferred,
    conversation_group,
    event_broadcast,
    event_emit,
)
from apps.conversations.models import Conversation, ConversationEvent
from apps.conversations.publisher import publisher
from tests.support.factories import ConversationFactory
from tests.support.process import REPO, service_env


async def _listen(conversation_id):
    layer = get_channel_layer()
    channel = await layer.new_channel()
    await layer.group_add(conversation_group(conversation_id), channel)
    return layer, channel


async def _nothing_arrives(layer, channel):
    # Something sent afterwards on the same path arrives first if nothing came before it.
    await layer.send(channel, {"type": "marker"})
    assert (await layer.receive(channel))["type"] == "marker"


@pytest.mark.django_db(transaction=True)
async def test_durable_event_is_stored_with_next_seq_and_broadcast_after_commit():
    conversation = await sync_to_async(ConversationFactory)()
    layer, channel = await _listen(conversation.pk)

    def emit_two():
        with transaction.atomic():
            first = event_emit(
                conversation=conversation, type="handoff", payload={"state": "waiting", "agent": None}
            )
            second = event_emit(
                conversation=conversation.pk,
                type="update",
                payload={"kind": "order", "title": "t", "body": "b", "data": {}},
            )
        return first, second

    first, second = await sync_to_async(emit_two)()

    assert (first.seq, second.seq) == (1, 2)
    received = [await layer.receive(channel), await layer.receive(channel)]
    cid = str(conversation.pk)
    assert received == [
        {
            "type": "conv.event",
            "meta": {},
            "event": {"type": "handoff", "conversation_id": cid, "seq": 1, "state": "waiting", "agent": None},
        },
        {
            "type": "conv.event",
            "meta": {},
            "event": {
                "type": "update",
                "conversation_id": cid,
                "seq": 2,
                "kind": "order",
                "title": "t",
                "body": "b",
                "data": {},
            },
        },
    ]
    assert await Conversation.objects.values_list("last_seq", flat=True).aget(pk=conversation.pk) == 2
    await layer.group_discard(conversation_group(conversation.pk), channel)


@pytest.mark.django_db(transaction=True)
async def test_rolled_back_event_is_neither_stored_nor_sent_and_leaves_no_gap():
    conversation = await sync_to_async(ConversationFactory)()
    layer, channel = await _listen(conversation.pk)

    def emit_then_fail():
        with transaction.atomic():
            event_emit(conversation=conversation, type="handoff", payload={"state": "waiting", "agent": None})
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        await sync_to_async(emit_then_fail)()
    await _nothing_arrives(layer, channel)
    assert await ConversationEvent.objects.filter(conversation=conversation).acount() == 0

    event = await sync_to_async(event_emit)(
        conversation=conversation.pk, type="csat_request", payload={"question": "?"}
    )
    assert event.seq == 1
    await layer.group_discard(conversation_group(conversation.pk), channel)


@pytest.mark.django_db(transaction=True)
async def test_live_event_is_sent_now_and_not_stored():
    conversation = await sync_to_async(ConversationFactory)()
    layer, channel = await _listen(conversation.pk)

    await sync_to_async(event_broadcast)(
        conversation_id=conversation.pk, type="typing", payload={"role": "agent", "on": True}
    )

    assert await layer.receive(channel) == {
        "type": "conv.event",
        "meta": {},
        "event": {"type": "typing", "conversation_id": str(conversation.pk), "role": "agent", "on": True},
    }
    assert await ConversationEvent.objects.acount() == 0
    await layer.group_discard(conversation_group(conversation.pk), channel)


@pytest.mark.django_db
def test_wrong_gate_for_the_kind_of_event_is_refused():
    conversation = ConversationFactory()
    with pytest.raises(ValueError, match="not a durable event type"):
        event_emit(conversation=conversation, type="token", payload={})
    with pytest.raises(ValueError, match="not a live event type"):
        event_broadcast(conversation_id=conversation.pk, type="message", payload={})


@pytest.mark.django_db(transaction=True)
def test_concurrent_writers_in_threads_get_unique_gap_free_seqs():
    conversation = ConversationFactory()
    errors = []

    def writer():
        try:
            for _ in range(25):
                event_emit(
                    conversation=conversation.pk,
                    type="update",
                    payload={"kind": "k", "title": "", "body": "", "data": {}},
                )
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            close_old_connections()

    threads = [threading.Thread(target=writer) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert errors == []
    seqs = list(ConversationEvent.objects.filter(conversation=conversation).values_list("seq", flat=True))
    assert sorted(seqs) == list(range(1, 201))
    conversation.refresh_from_db()
    assert conversation.last_seq == 200


WRITER = """
import django; django.setup()
from apps.conversations.events import event_emit
payload = {{"kind": "k", "title": "", "body": "", "data": {{}}}}
for _ in range(40):
    event_emit(conversation="{cid}", type="update", payload=payload)
"""


@pytest.mark.django_db(transaction=True)
def test_concurrent_writers_in_processes_get_unique_gap_free_seqs():
    conversation = ConversationFactory()
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER.format(cid=conversation.pk)],
            cwd=REPO,
            env=service_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        for _ in range(3)
    ]
    outputs = [p.communicate(timeout=120)[0].decode() for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], outputs

    seqs = list(ConversationEvent.objects.filter(conversation=conversation).values_list("seq", flat=True))
    assert sorted(seqs) == list(range(1, 121))
    conversation.refresh_from_db()
    assert conversation.last_seq == 120


@pytest.mark.django_db(transaction=True)
async def test_deferred_broadcasts_wait_for_the_caller_and_a_rollback_defers_nothing():
    conversation = await sync_to_async(ConversationFactory)()
    layer, channel = await _listen(conversation.pk)

    def emit_committed_and_rolled_back():
        with broadcasts_deferred() as pending:
            event_emit(conversation=conversation, type="handoff", payload={"state": "waiting", "agent": None})
            with pytest.raises(RuntimeError), transaction.atomic():
                event_emit(conversation=conversation, type="csat_request", payload={"question": "?"})
                raise RuntimeError("rolled back")
        return pending

    pending = await sync_to_async(emit_committed_and_rolled_back)()

    cid = str(conversation.pk)
    assert [(p.conversation_id, p.wire) for p in pending] == [
        (cid, {"type": "handoff", "conversation_id": cid, "seq": 1, "state": "waiting", "agent": None})
    ]
    await _nothing_arrives(layer, channel)  # held back until the caller sends them
    await abroadcast_deferred(pending)
    assert (await layer.receive(channel))["event"] == pending[0].wire
    await publisher().background_settled()  # the listeners' writes end before the test's flush
