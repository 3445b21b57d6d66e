"""Kefu's own events to subscribers (PROTOCOL.md §4 "Outgoing"), Standard-Webhooks signed.

This app listens to the publisher's WEBHOOKS audience (registered in apps.py):
`outgoing_events_listen` gets every committed durable conversation event, every rating and
every answer's feedback (apps/conversations/audiences.py). It sits on every chat message's
path, so with no enabled endpoint it costs a dict lookup (the answer is kept by the process's
runtime for a few seconds), and it never raises. With subscribers, the payload row and one
delivery row per endpoint are stored once, and one Celery task moves them forward (apps/webhooks/delivery.py).
"""

from __future__ import annotations

import logging
import time
from typing import Any

from django.db import transaction
from django.utils import timezone

from apps.conversations.publisher import Published
from apps.core.runtime import runtime

from .models import EventDelivery, EventPayload, WebhookEndpoint

logger = logging.getLogger(__name__)

EVENT_TYPES = (
    "conversation.created",
    "conversation.handoff",
    "conversation.closed",
    "message.created",
    "tool.succeeded",
    "csat.received",
    "feedback.received",
    "sla.breached",
)
# Events that are not conversation events (no seq) -> the outgoing type they stand for.
_LISTENER_ONLY = {
    "csat_received": "csat.received", "feedback": "feedback.received", "sla_breach": "sla.breached",
}
_CACHE_S = 5.0
_ANY_ENABLED = "webhooks.any_enabled"  # the runtime's entry: {"any": (monotonic expiry, answer)}


def _any_enabled() -> dict[str, tuple[float, bool]]:
    return runtime().get(_ANY_ENABLED, dict)


def outgoing_cache_clear() -> None:
    """Forget the cached "any enabled endpoint?" answer (after an endpoint changes here)."""
    _any_enabled().clear()


def _subscribers_exist() -> bool:
    now = time.monotonic()
    cached = _any_enabled().get("any")
    if cached is not None and cached[0] > now:
        return cached[1]
    exists = WebhookEndpoint.objects.filter(enabled=True).exists()
    _any_enabled()["any"] = (now + _CACHE_S, exists)
    return exists


def outgoing_types_for(wire: dict[str, Any]) -> list[str]:
    """Which outgoing event types one durable conversation event stands for."""
    types = ["conversation.created"] if wire.get("seq") == 1 else []
    kind = wire.get("type")
    if kind == "message":
        types.append("message.created")
    elif kind == "handoff":
        types.append("conversation.handoff")
    elif kind == "csat_request":
        types.append("conversation.closed")
    elif kind == "tool" and wire.get("status") == "succeeded":
        types.append("tool.succeeded")
    return types


def outgoing_events_listen(batch: list[Published]) -> None:
    """The WEBHOOKS listener: what subscribers want of a batch of committed events. Never raises."""
    for item in batch:
        event_type = _LISTENER_ONLY.get(item.wire.get("type"))
        if event_type is not None:
            data = {"customer_id": item.customer_id, **{k: v for k, v in item.wire.items() if k != "type"}}
            outgoing_event_publish(event_type=event_type, data=data)
        else:
            outgoing_durable_event(wire=item.wire, customer_id=item.customer_id)


def outgoing_durable_event(*, wire: dict, customer_id: str | None) -> None:
    """After commit of any durable conversation event: publish what subscribers want of it."""
    try:
        types = outgoing_types_for(wire)
        if not types or not _subscribers_exist():
            return
        fields = {k: v for k, v in wire.items() if k != "type"}
        events = []
        for event_type in types:
            if event_type == "conversation.created":
                data = {"conversation_id": wire.get("conversation_id"), "customer_id": customer_id}
            else:
                data = {"customer_id": customer_id, **fields}
            events.append((event_type, data))
        _publish(events)
    except Exception:
        kind = wire.get("type") if isinstance(wire, dict) else wire
        logger.exception("outgoing webhook for %r event failed to queue", kind)


def outgoing_event_publish(*, event_type: str, data: dict) -> None:
    """Publish one of EVENT_TYPES with `data` to every enabled endpoint that wants it."""
    try:
        if _subscribers_exist():
            _publish([(event_type, data)])
    except Exception:
        logger.exception("outgoing webhook %s failed to queue", event_type)


def _publish(events: list[tuple[str, dict[str, Any]]]) -> None:
    """Store each event's payload once and a delivery per endpoint that wants it; one task."""
    from .tasks import outgoing_payload_deliver_task

    enabled = list(WebhookEndpoint.objects.filter(enabled=True))
    payload_ids: list[int] = []
    with transaction.atomic():
        for event_type, data in events:
            endpoints = [e for e in enabled if e.wants(event_type)]
            if not endpoints:
                continue
            body = {"type": event_type, "timestamp": timezone.now().isoformat(), "data": data}
            payload = EventPayload.objects.create(event_type=event_type, payload=body)
            EventDelivery.objects.bulk_create(EventDelivery(payload=payload, endpoint=e) for e in endpoints)
            payload_ids.append(payload.pk)
        if payload_ids:
            transaction.on_commit(lambda: outgoing_payload_deliver_task.delay(payload_ids))
