"""Delivering outgoing webhooks: one signed POST per attempt, retries with backoff, and an
endpoint that has failed for days disabled. The delivery row is the truth; tasks only move it."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

import httpx
from django.conf import settings
from django.db import transaction
from django.utils import timezone
from standardwebhooks.webhooks import Webhook

from apps.core.outbound import OutboundRefused, outbound_request

from .models import DeliveryStatus, EventDelivery, EventDeliveryAttempt, WebhookEndpoint
from .outgoing import outgoing_cache_clear

TIMEOUT_S = 10.0
# A subscriber's answer is read only this far, and only an excerpt of it is kept (staff see it).
MAX_RESPONSE_BYTES = 4096
RESPONSE_EXCERPT_CHARS = 200
# Settings that may override these (tests shorten them): WEBHOOK_RETRY_SCHEDULE_S, and
# WEBHOOK_ENDPOINT_DISABLE_AFTER_S (an endpoint failing this long is disabled; 5 days).
RETRY_SCHEDULE_S = (5, 300, 1800, 7200, 18000, 36000, 36000)
DISABLE_AFTER_S = 5 * 24 * 3600


@dataclass(frozen=True)
class AttemptResult:
    status: str
    retry_in_s: float | None  # when to try again, if at all
    attempt: int  # the delivery's attempt count after this one


def retry_schedule() -> list[float]:
    """Seconds to wait after the 1st, 2nd, ... failure (Standard Webhooks' own schedule:
    5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h, about 27.6 h in all)."""
    return list(getattr(settings, "WEBHOOK_RETRY_SCHEDULE_S", RETRY_SCHEDULE_S))


def signed_request(*, delivery: EventDelivery, sent_at: datetime) -> tuple[bytes, dict[str, str]]:
    body = json.dumps(delivery.payload.payload, separators=(",", ":"))
    msg_id = f"msg_{delivery.pk.hex}"
    signature = Webhook(delivery.endpoint.secret).sign(msg_id, sent_at, body)
    headers = {
        "content-type": "application/json",
        "user-agent": "Kefu-Webhooks/1",
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(sent_at.timestamp())),
        "webhook-signature": signature,
    }
    return body.encode(), headers


def outgoing_delivery_attempt(
    *, delivery_id: str, expected_attempts: int | None = None, task_id: str = ""
) -> AttemptResult:
    """Try one delivery once. `expected_attempts` makes a duplicate task (a redelivered retry)
    a no-op: only the task scheduled after attempt N may make attempt N + 1."""
    with transaction.atomic():
        delivery = (
            EventDelivery.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("payload", "endpoint")
            .filter(pk=delivery_id)
            .first()
        )
        if delivery is None or delivery.status != DeliveryStatus.PENDING:
            return _skipped(delivery)
        if expected_attempts is not None and delivery.attempts != expected_attempts:
            return _skipped(delivery)
        # Long waits reach here in hops (tasks.py): one that arrives early says how long is left.
        if delivery.next_attempt_at is not None:
            left = (delivery.next_attempt_at - timezone.now()).total_seconds()
            if left > 1:
                return AttemptResult(delivery.status, left, delivery.attempts)
        endpoint = delivery.endpoint
        if not endpoint.enabled:
            delivery.status = DeliveryStatus.FAILED
            delivery.save(update_fields=["status", "updated_at"])
            return AttemptResult(delivery.status, None, delivery.attempts)
        # The row stays locked through the POST: a concurrent copy of this task skips it.
        ok, log = _post(delivery)
        log.task_id = task_id
        log.save()
        delivery.attempts += 1
        return _settle(delivery, endpoint, ok)


def _skipped(delivery: EventDelivery | None) -> AttemptResult:
    if delivery is None:
        return AttemptResult("skipped", None, -1)
    return AttemptResult(delivery.status, None, delivery.attempts)


def _post(delivery: EventDelivery) -> tuple[bool, EventDeliveryAttempt]:
    body, headers = signed_request(delivery=delivery, sent_at=timezone.now())
    log = EventDeliveryAttempt(delivery=delivery)
    started = time.monotonic()
    try:
        response = outbound_request(
            "POST",
            delivery.endpoint.url,
            max_bytes=MAX_RESPONSE_BYTES,
            truncate=True,
            content=body,
            headers=headers,
            timeout=TIMEOUT_S,
        )
        log.response_status = response.status_code
        log.response_body = response.text[:RESPONSE_EXCERPT_CHARS]
        ok = 200 <= response.status_code < 300
    except OutboundRefused as exc:  # the outbound policy's: a failed attempt, with the reason
        log.response_status, log.error, ok = exc.status, str(exc)[:2000], False
    except httpx.HTTPError as exc:
        log.error, ok = f"{type(exc).__name__}: {exc}"[:2000], False
    log.duration_ms = int((time.monotonic() - started) * 1000)
    return ok, log


def _settle(delivery: EventDelivery, endpoint: WebhookEndpoint, ok: bool) -> AttemptResult:
    now = timezone.now()
    if ok:
        delivery.status, delivery.next_attempt_at = DeliveryStatus.SUCCESS, None
        delivery.save(update_fields=["status", "attempts", "next_attempt_at", "updated_at"])
        WebhookEndpoint.objects.filter(pk=endpoint.pk).update(failing_since=None)
        return AttemptResult(delivery.status, None, delivery.attempts)
    failing_since = endpoint.failing_since or now
    if endpoint.failing_since is None:
        WebhookEndpoint.objects.filter(pk=endpoint.pk, failing_since__isnull=True).update(failing_since=now)
    schedule = retry_schedule()
    disable_after = getattr(settings, "WEBHOOK_ENDPOINT_DISABLE_AFTER_S", DISABLE_AFTER_S)
    if now - failing_since >= timedelta(seconds=disable_after):
        _endpoint_disable(endpoint, failing_since)
        delivery.status, delivery.next_attempt_at = DeliveryStatus.FAILED, None
    elif delivery.attempts > len(schedule):
        delivery.status, delivery.next_attempt_at = DeliveryStatus.FAILED, None
    else:
        wait = schedule[delivery.attempts - 1]
        delivery.next_attempt_at = now + timedelta(seconds=wait)
        delivery.save(update_fields=["attempts", "next_attempt_at", "updated_at"])
        return AttemptResult(delivery.status, wait, delivery.attempts)
    delivery.save(update_fields=["status", "attempts", "next_attempt_at", "updated_at"])
    return AttemptResult(delivery.status, None, delivery.attempts)


def _endpoint_disable(endpoint: WebhookEndpoint, failing_since: datetime) -> None:
    reason = f"Disabled automatically: every delivery failed since {failing_since:%Y-%m-%d %H:%M} UTC."
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(enabled=False, disabled_reason=reason)
    transaction.on_commit(outgoing_cache_clear)


def outgoing_deliveries_resend(*, delivery_ids: list[str]) -> int:
    """Send deliveries again now, whatever their state (admin action)."""
    from .tasks import outgoing_delivery_attempt_task

    deliveries = list(EventDelivery.objects.filter(pk__in=delivery_ids))
    for delivery in deliveries:
        EventDelivery.objects.filter(pk=delivery.pk).update(
            status=DeliveryStatus.PENDING, next_attempt_at=timezone.now()
        )
        transaction.on_commit(lambda d=delivery: outgoing_delivery_attempt_task.delay(str(d.pk), d.attempts))
    return len(deliveries)


def outgoing_deliveries_due() -> list[tuple[str, int]]:
    """Pending deliveries whose retry time has passed (for a sweep after lost retry tasks)."""
    return [
        (str(pk), attempts)
        for pk, attempts in EventDelivery.objects.filter(
            status=DeliveryStatus.PENDING, next_attempt_at__lte=timezone.now()
        ).values_list("pk", "attempts")[:1000]
    ]
