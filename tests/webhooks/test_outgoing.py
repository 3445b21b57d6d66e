"""Outgoing webhooks: which events go out, signing, retries with backoff, auto-disable, admin."""

from __future__ import annotations

import json
import time
import uuid
from datetime import timedelta

import pytest
from django.utils import timezone
from standardwebhooks.webhooks import Webhook

from apps.conversations.services import message_receive
from apps.webhooks import tasks
from apps.webhooks.delivery import RETRY_SCHEDULE_S, outgoing_delivery_attempt
from apps.webhooks.models import (
    DeliveryStatus,
    EventDelivery,
    EventDeliveryAttempt,
    EventPayload,
    WebhookEndpoint,
)
from apps.webhooks.outgoing import outgoing_durable_event, outgoing_event_publish, outgoing_types_for
from tests.support.webhooks import receiver

SECRET = "whsec_c3Vic2NyaWJlci1zZWNyZXQtb2YtMzItYnl0ZXMhIQ=="


def endpoint(url: str = "http://127.0.0.1:9/", **fields) -> WebhookEndpoint:
    return WebhookEndpoint.objects.create(url=url, secret=SECRET, **fields)


@pytest.mark.parametrize(
    ("wire", "types"),
    [
        ({"type": "message", "seq": 1}, ["conversation.created", "message.created"]),
        ({"type": "update", "seq": 1}, ["conversation.created"]),
        ({"type": "message", "seq": 2}, ["message.created"]),
        ({"type": "message_end", "seq": 3}, []),
        ({"type": "handoff", "seq": 4, "state": "waiting"}, ["conversation.handoff"]),
        ({"type": "csat_request", "seq": 5}, ["conversation.closed"]),
        ({"type": "tool", "seq": 6, "status": "succeeded"}, ["tool.succeeded"]),
        ({"type": "tool", "seq": 6, "status": "running"}, []),
        ({"type": "update", "seq": 7}, []),
    ],
)
def test_which_outgoing_events_a_conversation_event_stands_for(wire, types):
    assert outgoing_types_for(wire) == types


def test_the_default_retries_span_more_than_a_day():
    assert sum(RETRY_SCHEDULE_S) >= 24 * 3600


@pytest.mark.django_db
def test_without_subscribers_nothing_is_stored_and_the_answer_is_cached(django_assert_num_queries):
    with django_assert_num_queries(1):
        outgoing_durable_event(wire={"type": "message", "seq": 1, "conversation_id": "c"}, customer_id="x")
    with django_assert_num_queries(0):
        for _ in range(100):
            outgoing_durable_event(
                wire={"type": "message", "seq": 2, "conversation_id": "c"}, customer_id="x"
            )
            outgoing_event_publish(event_type="csat.received", data={})
    assert EventPayload.objects.count() == 0


@pytest.mark.django_db
def test_it_never_raises(caplog):
    outgoing_durable_event(wire=None, customer_id=None)  # type: ignore[arg-type]
    outgoing_event_publish(event_type="csat.received", data={"not": object()})  # not JSON-serialisable
    endpoint()
    from apps.webhooks.outgoing import outgoing_cache_clear

    outgoing_cache_clear()
    outgoing_event_publish(event_type="csat.received", data={"not": object()})
    assert "failed to queue" in caplog.text


@pytest.mark.django_db
def test_a_payload_is_built_once_for_every_subscriber_that_wants_it(django_capture_on_commit_callbacks):
    everything, messages_only = endpoint(), endpoint(event_types=["message.created"])
    endpoint(enabled=False)
    wire = {"type": "message", "conversation_id": "c1", "seq": 1, "message": {"id": "m1", "text": "hi"}}
    with django_capture_on_commit_callbacks() as queued:
        outgoing_durable_event(wire=wire, customer_id="cust-1")
    assert len(queued) == 1  # one task for both payloads
    created, message = EventPayload.objects.order_by("pk")
    assert (created.event_type, created.payload["data"]) == (
        "conversation.created",
        {"conversation_id": "c1", "customer_id": "cust-1"},
    )
    assert message.payload["type"] == "message.created"
    assert message.payload["data"] == {
        "customer_id": "cust-1",
        "conversation_id": "c1",
        "seq": 1,
        "message": {"id": "m1", "text": "hi"},
    }
    assert sorted((d.payload.event_type, d.endpoint_id) for d in EventDelivery.objects.all()) == [
        ("conversation.created", everything.pk),
        ("message.created", everything.pk),
        ("message.created", messages_only.pk),
    ]


@pytest.mark.django_db(transaction=True)
def test_a_failing_receiver_gets_retries_until_it_recovers(settings, celery_worker_live):
    settings.WEBHOOK_RETRY_SCHEDULE_S = [0.2, 0.2, 0.2, 0.2]
    with receiver([500, 503, 200]) as hooks:
        subscriber = endpoint(hooks.url)
        outgoing_event_publish(event_type="csat.received", data={"conversation_id": "c1", "score": 5})
        delivery = EventDelivery.objects.get()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and EventDelivery.objects.get().status == DeliveryStatus.PENDING:
            time.sleep(0.05)
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == (DeliveryStatus.SUCCESS, 3)
    attempts = EventDeliveryAttempt.objects.filter(delivery=delivery).order_by("created_at")
    assert [(a.response_status, a.response_body) for a in attempts] == [
        (500, "answered 500"),
        (503, "answered 503"),
        (200, "answered 200"),
    ]
    assert all(a.task_id for a in attempts)
    assert len(hooks.requests) == 3
    assert {r.headers["webhook-id"] for r in hooks.requests} == {f"msg_{delivery.pk.hex}"}
    for request in hooks.requests:  # what a Standard Webhooks receiver checks
        body = Webhook(SECRET).verify(request.body.decode(), request.headers)
        assert (body["type"], body["data"]) == ("csat.received", {"conversation_id": "c1", "score": 5})
    subscriber.refresh_from_db()
    assert (subscriber.enabled, subscriber.failing_since) == (True, None)


@pytest.mark.django_db(transaction=True)
def test_a_conversation_message_reaches_a_subscriber(celery_worker_live):
    from tests.support.factories import CustomerFactory

    customer = CustomerFactory()
    with receiver([204]) as hooks:
        endpoint(hooks.url, event_types=["message.created"])
        # The event gate calls outgoing_durable_event after the message commits.
        message_receive(customer_id=customer.pk, client_msg_id=uuid.uuid4(), text="hello")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not hooks.requests:
            time.sleep(0.05)
    bodies = [json.loads(r.body) for r in hooks.requests]
    from_customer = [b for b in bodies if b["data"]["message"]["role"] == "customer"]
    assert [(b["type"], b["data"]["customer_id"], b["data"]["seq"]) for b in from_customer] == [
        ("message.created", str(customer.pk), 1)
    ]
    assert from_customer[0]["data"]["message"]["text"] == "hello"


@pytest.mark.django_db
def test_retries_stop_after_the_schedule(settings):
    settings.WEBHOOK_RETRY_SCHEDULE_S = [0, 0]
    with receiver([500]) as hooks:
        delivery = EventDelivery.objects.create(
            payload=EventPayload.objects.create(
                event_type="csat.received", payload={"type": "csat.received"}
            ),
            endpoint=endpoint(hooks.url),
        )
        results = [outgoing_delivery_attempt(delivery_id=delivery.pk, expected_attempts=n) for n in range(4)]
    assert [(r.status, r.retry_in_s, r.attempt) for r in results] == [
        ("pending", 0, 1),
        ("pending", 0, 2),
        ("failed", None, 3),
        ("failed", None, 3),  # nothing more
    ]
    assert len(hooks.requests) == 3


@pytest.mark.django_db
def test_a_retry_hours_away_waits_in_hops_shorter_than_the_visibility_timeout(settings, monkeypatch):
    """Redis would hand a task counting down for 2 h to another worker every visibility timeout;
    the retry waits in short hops instead, and only the hop after its time makes the attempt."""
    settings.WEBHOOK_RETRY_SCHEDULE_S = [7200]
    scheduled = []
    monkeypatch.setattr(
        tasks.outgoing_delivery_attempt_task,
        "apply_async",
        lambda args, countdown: scheduled.append((args, countdown)),
    )
    with receiver([500]) as hooks:
        delivery = EventDelivery.objects.create(
            payload=EventPayload.objects.create(event_type="csat.received", payload={}),
            endpoint=endpoint(hooks.url),
        )
        first = tasks.outgoing_delivery_attempt_task(str(delivery.pk), 0)  # fails: retry in 2 h
        early = tasks.outgoing_delivery_attempt_task(str(delivery.pk), 1)  # a hop, 2 h early
        assert len(hooks.requests) == 1
        EventDelivery.objects.filter(pk=delivery.pk).update(next_attempt_at=timezone.now())
        due = tasks.outgoing_delivery_attempt_task(str(delivery.pk), 1)  # the hop after its time

    hop = settings.CELERY_MAX_COUNTDOWN_S
    assert hop == settings.CELERY_BROKER_TRANSPORT_OPTIONS["visibility_timeout"] / 2
    assert scheduled == [((str(delivery.pk), 1), hop), ((str(delivery.pk), 1), hop)]
    assert (first, early, due) == ("pending", "pending", "failed")  # the schedule had one retry
    assert len(hooks.requests) == 2
    assert EventDeliveryAttempt.objects.filter(delivery=delivery).count() == 2


@pytest.mark.django_db
def test_a_stale_copy_of_a_retry_task_does_nothing():
    with receiver([500]) as hooks:
        delivery = EventDelivery.objects.create(
            payload=EventPayload.objects.create(event_type="csat.received", payload={}),
            endpoint=endpoint(hooks.url),
        )
        first = outgoing_delivery_attempt(delivery_id=delivery.pk, expected_attempts=0)
        copy = outgoing_delivery_attempt(delivery_id=delivery.pk, expected_attempts=0)
    assert (first.attempt, copy.attempt, copy.retry_in_s, len(hooks.requests)) == (1, 1, None, 1)


@pytest.mark.django_db
def test_an_endpoint_failing_for_days_is_disabled_and_shown_so_in_admin(admin_client):
    with receiver([500]) as hooks:
        subscriber = endpoint(hooks.url, failing_since=timezone.now() - timedelta(days=5, minutes=1))
        delivery = EventDelivery.objects.create(
            payload=EventPayload.objects.create(event_type="csat.received", payload={}), endpoint=subscriber
        )
        result = outgoing_delivery_attempt(delivery_id=delivery.pk)
    assert (result.status, result.retry_in_s) == (DeliveryStatus.FAILED, None)
    subscriber.refresh_from_db()
    assert subscriber.enabled is False
    assert subscriber.disabled_reason.startswith("Disabled automatically: every delivery failed since")
    page = admin_client.get("/admin/webhooks/webhookendpoint/").content.decode()
    assert "Disabled automatically" in page
    outgoing_event_publish(event_type="csat.received", data={})
    assert EventPayload.objects.count() == 1  # nobody enabled: nothing new


@pytest.mark.django_db
def test_one_failure_after_a_success_does_not_disable(settings):
    with receiver([500]) as hooks:
        subscriber = endpoint(hooks.url)
        delivery = EventDelivery.objects.create(
            payload=EventPayload.objects.create(event_type="csat.received", payload={}), endpoint=subscriber
        )
        outgoing_delivery_attempt(delivery_id=delivery.pk)
    subscriber.refresh_from_db()
    assert subscriber.enabled is True
    assert subscriber.failing_since is not None


@pytest.mark.django_db
def test_admin_resends_a_failed_delivery(admin_client, django_capture_on_commit_callbacks):
    delivery = EventDelivery.objects.create(
        payload=EventPayload.objects.create(event_type="csat.received", payload={}),
        endpoint=endpoint(),
        status=DeliveryStatus.FAILED,
        attempts=8,
    )
    with django_capture_on_commit_callbacks() as queued:
        response = admin_client.post(
            "/admin/webhooks/eventdelivery/", {"action": "resend", "_selected_action": [str(delivery.pk)]}
        )
    assert response.status_code == 302
    assert len(queued) == 1
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.PENDING
    with receiver([200]) as hooks:
        EventDelivery.objects.filter(pk=delivery.pk).update(endpoint=endpoint(hooks.url))
        assert outgoing_delivery_attempt(delivery_id=delivery.pk, expected_attempts=8).status == "success"
