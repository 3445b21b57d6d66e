"""Celery tasks of webhooks: ids in, a service call, safe to retry or to run twice."""

from __future__ import annotations

import logging

from celery import shared_task
from django.conf import settings

from .delivery import outgoing_deliveries_due, outgoing_delivery_attempt
from .models import EventDelivery
from .services import webhook_event_mark_failed, webhook_event_process, webhook_events_stale

logger = logging.getLogger(__name__)

@shared_task(bind=True, acks_late=True, max_retries=5, soft_time_limit=60, time_limit=90)
def webhook_event_process_task(self, event_id: int) -> str:
    """Process one incoming event; exactly once however often it runs (the row is locked)."""
    try:
        event = webhook_event_process(event_id=event_id)
        return event.status if event is not None else "missing"
    except Exception as exc:
        if self.request.retries < self.max_retries:
            raise self.retry(exc=exc, countdown=min(2**self.request.retries * 2, 60)) from exc
        logger.exception("webhook event %s failed", event_id)
        webhook_event_mark_failed(event_id=event_id, error=f"{type(exc).__name__}: {exc}")
        return "failed"


@shared_task(acks_late=True)
def outgoing_payload_deliver_task(payload_ids: list[int]) -> int:
    """Fan payloads out: a first attempt per pending delivery of them."""
    pending = EventDelivery.objects.filter(payload_id__in=payload_ids, status="pending", attempts=0)
    ids = [str(pk) for pk in pending.values_list("pk", flat=True)]
    for delivery_id in ids:
        outgoing_delivery_attempt_task.delay(delivery_id, 0)
    return len(ids)


@shared_task(bind=True, acks_late=True, soft_time_limit=60, time_limit=90)
def outgoing_delivery_attempt_task(self, delivery_id: str, expected_attempts: int | None = None) -> str:
    """One attempt; on failure, the next one is scheduled by the backoff schedule."""
    result = outgoing_delivery_attempt(
        delivery_id=delivery_id, expected_attempts=expected_attempts, task_id=self.request.id or ""
    )
    if result.retry_in_s is not None:
        # Redis gives a task held past the visibility timeout (a countdown counts) to another
        # worker, again and again: hours-long waits go in hops shorter than that instead.
        hop = min(result.retry_in_s, settings.CELERY_MAX_COUNTDOWN_S)
        outgoing_delivery_attempt_task.apply_async((delivery_id, result.attempt), countdown=hop)
    return result.status


@shared_task  # run by beat every WEBHOOKS_SWEEP_INTERVAL_S (CELERY_BEAT_SCHEDULE)
def webhooks_sweep_task() -> dict[str, int]:
    """Re-queue lost work: incoming events still `received` after a minute, and outgoing retries
    whose countdown task vanished (a worker restarted). Duplicates are harmless (row locks)."""
    stale = webhook_events_stale()
    for event_id in stale:
        webhook_event_process_task.delay(event_id)
    due = outgoing_deliveries_due()
    for delivery_id, attempts in due:
        outgoing_delivery_attempt_task.delay(delivery_id, attempts)
    return {"events": len(stale), "deliveries": len(due)}
