"""The one way out: the audience table, what each event type reaches, listeners, on commit."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from django.db import transaction

from apps.conversations.audiences import AUDIENCES, DURABLE_TYPES, Audience, audiences_for
from apps.conversations.publisher import Published, Publisher

A = Audience
CID = str(uuid.uuid4())
CUSTOMER = str(uuid.uuid4())


class RecordingLayer:
    """A channel layer that records `group_send` calls (CONVENTIONS.md: capture, then count)."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, dict[str, Any]]] = []

    async def group_send(self, group: str, message: dict[str, Any]) -> None:
        self.sent.append((group, message))


@pytest.fixture
def layer() -> RecordingLayer:
    return RecordingLayer()


@pytest.fixture
def recorder(layer: RecordingLayer) -> tuple[Publisher, dict[Audience, list[Published]]]:
    heard: dict[Audience, list[Published]] = {A.QUEUE: [], A.WEBHOOKS: []}
    pub = Publisher(layer=lambda: layer)
    pub.listen(A.QUEUE, heard[A.QUEUE].extend)
    pub.listen(A.WEBHOOKS, heard[A.WEBHOOKS].extend)
    return pub, heard


# The documented audiences (PROTOCOL.md §2-§4, DESIGN.md "Two audiences"), one row per type.
EXPECTED = {
    "message": {A.CONVERSATION, A.QUEUE, A.WEBHOOKS},
    "handoff": {A.CONVERSATION, A.QUEUE, A.WEBHOOKS},
    "update": {A.CONVERSATION, A.QUEUE, A.WEBHOOKS},
    "csat_request": {A.CONVERSATION, A.QUEUE, A.WEBHOOKS},
    "message_end": {A.CONVERSATION, A.WEBHOOKS},
    "tool": {A.CONVERSATION, A.WEBHOOKS},
    "token": {A.CONVERSATION},
    "partial": {A.CONVERSATION},
    "typing": {A.CONVERSATION},
    "note": {A.CONVERSATION_AGENTS},
    "presence": {A.CONVERSATION_AGENTS},
    "conversation": {A.AGENTS},
    "queue_change": {A.QUEUE},
    "csat_received": {A.QUEUE, A.WEBHOOKS},
    "feedback": {A.CONVERSATION_AGENTS, A.WEBHOOKS},
    "sla_breach": {A.AGENTS, A.QUEUE, A.WEBHOOKS},
}

# Which channel-layer groups each type reaches (listener audiences reach none).
GROUPS = {
    A.CONVERSATION: f"conv.{CID}",
    A.NEW_CONVERSATION: f"cust.{CUSTOMER}",
    A.CONVERSATION_AGENTS: f"agents.conv.{CID}",
    A.AGENTS: "agents",
}


def test_the_table_names_exactly_the_documented_audiences_of_each_type():
    assert {t: set(a) for t, a in AUDIENCES.items()} == EXPECTED


def test_agent_only_events_never_reach_a_customer_socket():
    customer_sockets = {A.CONVERSATION, A.NEW_CONVERSATION}
    for kind in ("note", "presence", "conversation", "queue_change", "csat_received", "feedback"):
        assert not audiences_for({"type": kind, "seq": 1}) & customer_sockets, kind
    for kind in ("note", "presence", "conversation"):  # nor a subscriber outside
        assert A.WEBHOOKS not in audiences_for({"type": kind}), kind


def test_a_conversations_first_event_also_tells_the_customers_other_sockets():
    first = {"type": "message", "conversation_id": CID, "seq": 1}
    assert audiences_for(first) == {A.CONVERSATION, A.NEW_CONVERSATION, A.QUEUE, A.WEBHOOKS}
    assert audiences_for({**first, "seq": 2}) == EXPECTED["message"]
    assert audiences_for({"type": "note", "seq": 1}) == EXPECTED["note"]  # only durable events start one


def _wire(kind: str) -> dict[str, Any]:
    seq = {"seq": 7} if kind in DURABLE_TYPES else {}
    return {"type": kind, "conversation_id": CID, **seq}


@pytest.mark.parametrize("kind", sorted(EXPECTED))
def test_each_type_reaches_exactly_its_groups_and_listeners(kind, layer, recorder, monkeypatch):
    monkeypatch.setattr("apps.conversations.publisher.redis_async", _FakeRedis)
    pub, heard = recorder
    item = Published(CID, CUSTOMER, _wire(kind))

    pub.deliver([item])

    expected = EXPECTED[kind]
    assert sorted(group for group, _ in layer.sent) == sorted(GROUPS[a] for a in expected if a in GROUPS)
    for group, message in layer.sent:
        if group.startswith("conv."):
            assert message == {"type": "conv.event", "event": item.wire, "meta": {}}
        else:
            assert message == {"type": "console.event", "event": item.wire}
    assert {a for a, items in heard.items() if items} == expected & {A.QUEUE, A.WEBHOOKS}


def test_a_new_conversation_is_announced_after_its_first_event(layer, recorder, monkeypatch):
    monkeypatch.setattr("apps.conversations.publisher.redis_async", _FakeRedis)
    pub, _ = recorder
    pub.deliver([Published(CID, CUSTOMER, {**_wire("message"), "seq": 1})])
    assert [(group, message["type"]) for group, message in layer.sent] == [
        (f"conv.{CID}", "conv.event"),
        (f"cust.{CUSTOMER}", "conv.started"),
    ]
    assert layer.sent[1][1] == {"type": "conv.started", "conversation_id": CID}


def test_a_listeners_events_reach_groups_only(layer, monkeypatch):
    pub = Publisher(layer=lambda: layer)
    entry = {"type": "conversation", "conversation": {"id": CID}}
    pub.listen(A.QUEUE, lambda batch: [Published(b.conversation_id, None, entry) for b in batch])
    pub.deliver([Published(CID, None, {"type": "queue_change", "conversation_id": CID})])
    assert layer.sent == [("agents", {"type": "console.event", "event": entry})]


def test_an_event_without_an_audience_is_refused(recorder):
    pub, _ = recorder
    with pytest.raises(ValueError, match="has no audience"):
        pub.publish(Published(CID, None, {"type": "secret"}))
    with pytest.raises(ValueError, match="not a listener audience"):
        pub.listen(A.CONVERSATION, print)


@pytest.mark.django_db
def test_in_a_transaction_events_leave_on_commit_and_the_queue_entry_once(
    layer, recorder, monkeypatch, django_capture_on_commit_callbacks
):
    monkeypatch.setattr("apps.conversations.publisher.redis_async", _FakeRedis)
    pub, heard = recorder
    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        pub.publish(Published(CID, CUSTOMER, _wire("message")))
        pub.publish(Published(CID, None, {"type": "queue_change", "conversation_id": CID}))  # a read mark
        pub.publish(Published(CID, CUSTOMER, {**_wire("handoff"), "seq": 8}))
        assert layer.sent == []  # nothing before the commit
    assert [m["event"]["type"] for _, m in layer.sent] == ["message", "handoff"]
    assert [i.wire["type"] for i in heard[A.QUEUE]] == ["message"]  # one rebuild for the three
    assert [i.wire["type"] for i in heard[A.WEBHOOKS]] == ["message", "handoff"]


@pytest.mark.django_db
def test_a_rolled_back_savepoint_takes_its_queue_rebuild_with_it(
    layer, recorder, monkeypatch, django_capture_on_commit_callbacks
):
    monkeypatch.setattr("apps.conversations.publisher.redis_async", _FakeRedis)
    pub, heard = recorder
    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        with pytest.raises(RuntimeError), transaction.atomic():
            pub.publish(Published(CID, CUSTOMER, _wire("message")))
            raise RuntimeError("rolled back")
        pub.publish(Published(CID, None, {"type": "queue_change", "conversation_id": CID}))
    assert layer.sent == []
    assert [i.wire["type"] for i in heard[A.QUEUE]] == ["queue_change"]


class _FakeRedis:
    """Stands in for the seq mark's Redis (the table tests need no server)."""

    async def eval(self, *args: Any) -> int:
        return 1


def test_a_batch_for_listeners_only_makes_no_trip_to_the_event_loop(recorder, layer, monkeypatch):
    """A read mark's `queue_change` reaches the queue listener without an `async_to_sync` hop."""
    import apps.conversations.publisher as publisher_module

    hops: list[object] = []
    real = publisher_module.async_to_sync
    monkeypatch.setattr(publisher_module, "async_to_sync", lambda fn: hops.append(fn) or real(fn))
    pub, heard = recorder
    change = Published(CID, CUSTOMER, {"type": "queue_change", "conversation_id": CID})

    pub.deliver([change])

    assert (len(hops), layer.sent, [p.wire["type"] for p in heard[A.QUEUE]]) == (0, [], ["queue_change"])
