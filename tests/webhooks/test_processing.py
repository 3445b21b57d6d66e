"""Processing stored events: customer matching, the `update` event, exactly once."""

from __future__ import annotations

import threading
import uuid

import pytest
from django.db import connections

from apps.conversations.models import Conversation, ConversationEvent, ConversationState
from apps.conversations.services import conversation_close, message_receive
from apps.webhooks.models import WebhookEvent, WebhookEventStatus
from apps.webhooks.services import webhook_event_process, webhook_events_reprocess
from apps.webhooks.tasks import webhook_event_process_task
from tests.support.factories import CustomerFactory
from tests.support.webhooks import shipped, signed


def stored(source, event: dict, webhook_id: str | None = None) -> WebhookEvent:
    return WebhookEvent.objects.create(
        source=source, webhook_id=webhook_id or uuid.uuid4().hex, type=event["type"], data=event["data"]
    )


def updates(customer) -> list[tuple[int, dict]]:
    events = ConversationEvent.objects.filter(conversation__customer=customer, type="update").order_by("seq")
    return [(e.seq, e.payload) for e in events]


@pytest.mark.django_db
class TestProcess:
    def test_an_event_for_a_customer_without_a_conversation_opens_one(self, demo_source, crm_customer):
        event = webhook_event_process(event_id=stored(demo_source, shipped()).pk)
        conversation = Conversation.objects.get(customer=crm_customer)
        assert (event.status, event.customer, event.conversation, event.seq) == (
            WebhookEventStatus.PROCESSED,
            crm_customer,
            conversation,
            1,
        )
        assert updates(crm_customer) == [
            (
                1,
                {
                    "kind": "order.shipped",
                    "title": "Your order PP-1002 has shipped",
                    "body": "Tracking number: 1Z999",
                    # only the template's fields, never the whole payload (PROTOCOL.md §2)
                    "data": {"order_id": "PP-1002", "tracking_number": "1Z999"},
                },
            )
        ]
        assert conversation.state == ConversationState.BOT

    def test_an_event_goes_to_the_open_conversation_after_its_messages(self, demo_source, crm_customer):
        receipt = message_receive(
            customer_id=crm_customer.pk, client_msg_id=uuid.uuid4(), text="where is it?"
        )
        event = webhook_event_process(event_id=stored(demo_source, shipped()).pk)
        assert (event.conversation_id, event.seq) == (receipt.conversation.pk, 2)
        assert Conversation.objects.filter(customer=crm_customer).count() == 1

    def test_a_closed_conversation_is_not_reopened(self, demo_source, crm_customer):
        receipt = message_receive(customer_id=crm_customer.pk, client_msg_id=uuid.uuid4(), text="hi")
        conversation_close(conversation_id=receipt.conversation.pk)
        event = webhook_event_process(event_id=stored(demo_source, shipped()).pk)
        assert event.conversation_id != receipt.conversation.pk
        assert (event.seq, Conversation.objects.filter(customer=crm_customer).count()) == (1, 2)

    def test_a_customer_is_found_by_a_verified_email_when_the_external_id_is_unknown(
        self, demo_source, crm_customer
    ):
        crm_customer.email_verified = True  # it came inside a signed JWT
        crm_customer.save()
        CustomerFactory(email="ADA@example.com")  # an anonymous visitor who typed the same address
        event = webhook_event_process(
            event_id=stored(demo_source, shipped(external_id="erp-77", email="Ada@Example.com")).pk
        )
        assert (event.status, event.customer) == (WebhookEventStatus.PROCESSED, crm_customer)

    def test_an_unverified_email_matches_nobody(self, demo_source, crm_customer):
        CustomerFactory(email="ada@example.com")  # typed by an anonymous visitor
        event = webhook_event_process(
            event_id=stored(demo_source, shipped(external_id="erp-77", email="ada@example.com")).pk
        )
        assert (event.status, event.customer_id, event.conversation_id) == ("unmatched", None, None)
        assert ConversationEvent.objects.count() == 0

    def test_an_unknown_customer_is_kept_unmatched_and_matched_when_reprocessed(
        self, demo_source, django_capture_on_commit_callbacks
    ):
        event = webhook_event_process(event_id=stored(demo_source, shipped(external_id="crm-404")).pk)
        assert (event.status, event.conversation, event.attempts) == (WebhookEventStatus.UNMATCHED, None, 1)
        assert "No customer" in event.error
        assert ConversationEvent.objects.count() == 0

        customer = CustomerFactory(external_id="crm-404")
        with django_capture_on_commit_callbacks() as queued:
            assert webhook_events_reprocess(event_ids=[event.pk]) == 1
        assert len(queued) == 1
        event = webhook_event_process(event_id=event.pk)
        assert (event.status, event.customer, event.error, event.attempts) == (
            WebhookEventStatus.PROCESSED,
            customer,
            "",
            2,
        )
        assert len(updates(customer)) == 1

    def test_processing_again_changes_nothing(
        self, demo_source, crm_customer, django_capture_on_commit_callbacks
    ):
        event = stored(demo_source, shipped())
        for _ in range(3):
            webhook_event_process(event_id=event.pk)
        assert len(updates(crm_customer)) == 1
        with django_capture_on_commit_callbacks() as queued:
            assert webhook_events_reprocess(event_ids=[event.pk]) == 0
        assert queued == []

    def test_an_unknown_event_type_gets_a_generic_title(self, demo_source, crm_customer):
        event = {
            "type": "warehouse.restocked",
            "data": {"customer": {"external_id": "crm-123"}, "sku": "T-1"},
        }
        webhook_event_process(event_id=stored(demo_source, event).pk)
        [(_, payload)] = updates(crm_customer)
        assert payload == {"kind": "warehouse.restocked", "title": "Update: warehouse.restocked", "body": "",
                           "data": {}}

    def test_a_source_template_overrides_the_default(self, demo_source, crm_customer):
        demo_source.templates = {"order.*": {"title": "Order {order_id}: {action}", "body": "Via {carrier}"}}
        demo_source.save()
        webhook_event_process(event_id=stored(demo_source, shipped()).pk)
        [(_, payload)] = updates(crm_customer)
        assert (payload["title"], payload["body"]) == ("Order PP-1002: shipped", "")
        # no "data" of its own: the default's fields for order.shipped
        assert payload["data"] == {"order_id": "PP-1002", "tracking_number": "1Z999"}

    @pytest.mark.parametrize(
        ("fields", "data"),
        [
            (["order_id", "customer.external_id", "sku"],
             {"order_id": "PP-1002", "customer.external_id": "crm-123"}),
            (["order", "customer"], {}),  # objects are never sent whole
            ([], {}),
            ("order_id", {}),  # not a list: nothing rather than everything
        ],
    )
    def test_a_source_template_lists_its_own_data_fields(self, demo_source, crm_customer, fields, data):
        demo_source.templates = {"order.shipped": {"title": "Shipped", "data": fields}}
        demo_source.save()
        webhook_event_process(event_id=stored(demo_source, shipped()).pk)
        [(_, payload)] = updates(crm_customer)
        assert payload["data"] == data

    @pytest.mark.parametrize(
        ("type", "data", "title", "body"),
        [
            (
                "shipment.delayed",
                {"order_id": "PP-1", "status": "delayed"},
                "Shipment update for order PP-1: delayed",
                "Status: delayed",
            ),
            (
                "ticket.created",
                {"ticket": {"id": 42, "subject": "Broken zipper"}},
                "We opened ticket 42 for you",
                "Broken zipper",
            ),
            (
                "ticket.solved",
                {"ticket_id": 42, "status": "solved"},
                "Your ticket 42 was updated",
                "Status: solved",
            ),
            (
                "refund.succeeded",
                {"order_id": "PP-1", "amount": "39.00", "currency": "EUR"},
                "Refund succeeded for order PP-1",
                "Amount: 39.00 EUR",
            ),
            ("customer.updated", {}, "Your account was updated", ""),
            ("order.cancelled", {}, "Update: order.cancelled", ""),  # no order id: the generic title
        ],
    )
    def test_default_templates(self, demo_source, crm_customer, type, data, title, body):
        event = {"type": type, "data": {"customer": {"external_id": "crm-123"}, **data}}
        webhook_event_process(event_id=stored(demo_source, event).pk)
        [(_, payload)] = updates(crm_customer)
        assert (payload["title"], payload["body"]) == (title, body)


def in_threads(*targets) -> None:
    errors: list[BaseException] = []

    def run(target):
        try:
            target()
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(t,)) for t in targets]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []


@pytest.mark.django_db(transaction=True)
def test_two_workers_at_once_process_an_event_once(demo_source, crm_customer):
    for _ in range(5):
        event = stored(demo_source, shipped())
        in_threads(*[lambda pk=event.pk: webhook_event_process(event_id=pk)] * 4)
    assert [seq for seq, _ in updates(crm_customer)] == [1, 2, 3, 4, 5]
    assert WebhookEvent.objects.filter(status=WebhookEventStatus.PROCESSED).count() == 5
    assert Conversation.objects.filter(customer=crm_customer).count() == 1


@pytest.mark.django_db(transaction=True)
def test_two_events_and_a_message_at_once_open_one_conversation(demo_source, crm_customer):
    for _ in range(5):
        a, b = stored(demo_source, shipped()), stored(demo_source, shipped(order_id="PP-1001"))
        in_threads(
            lambda pk=a.pk: webhook_event_process(event_id=pk),
            lambda pk=b.pk: webhook_event_process(event_id=pk),
            lambda: message_receive(customer_id=crm_customer.pk, client_msg_id=uuid.uuid4(), text="hi"),
        )
        [conversation] = Conversation.objects.filter(customer=crm_customer)
        assert conversation.last_seq == 3
        conversation_close(conversation_id=conversation.pk)
        Conversation.objects.filter(pk=conversation.pk).delete()


@pytest.mark.django_db(transaction=True)
def test_a_real_worker_processes_a_duplicate_delivery_and_a_redelivered_task_once(
    client, demo_source, crm_customer, celery_worker_live
):
    body, headers = signed(shipped())
    for _ in range(3):  # the CRM retried: the event is stored once, one task is queued
        client.post("/webhooks/demo-crm/", data=body, content_type="application/json", headers=headers)
    event = WebhookEvent.objects.get()
    # The broker redelivered the task, twice: both copies wait for the row, then find it done.
    results = [webhook_event_process_task.delay(event.pk) for _ in range(2)]
    assert [r.get(timeout=30) for r in results] == ["processed", "processed"]
    event.refresh_from_db()
    assert (event.status, event.seq) == (WebhookEventStatus.PROCESSED, 1)
    assert len(updates(crm_customer)) == 1


@pytest.mark.django_db
def test_the_demo_crm_order_shipped_payload(demo_source, crm_customer):
    """The event apps/demo_crm sends when an order ships (order number, shipment nested)."""
    event = {
        "type": "order.shipped",
        "data": {
            "customer": {"external_id": "crm-123", "email": "ada@example.com"},
            "order": {
                "number": "PP-1002",
                "status": "shipped",
                "shipment": {
                    "carrier": "DHL",
                    "tracking_number": "00340434161234567890",
                    "tracking_url": None,
                },
                "total": "39.00",
                "currency": "EUR",
            },
        },
    }
    webhook_event_process(event_id=stored(demo_source, event).pk)
    [(_, payload)] = updates(crm_customer)
    assert (payload["title"], payload["body"]) == (
        "Your order PP-1002 has shipped",
        "Carrier: DHL\nTracking number: 00340434161234567890",
    )
    assert payload["data"] == {
        "order_id": "PP-1002",
        "status": "shipped",
        "carrier": "DHL",
        "tracking_number": "00340434161234567890",
    }


@pytest.mark.django_db(transaction=True)
def test_an_event_whose_task_was_lost_is_found_by_the_sweep(
    demo_source, crm_customer, celery_worker_live
):
    from datetime import timedelta

    from django.utils import timezone

    from apps.webhooks.tasks import webhooks_sweep_task

    fresh, lost = stored(demo_source, shipped()), stored(demo_source, shipped(order_id="PP-1001"))
    WebhookEvent.objects.filter(pk=lost.pk).update(received_at=timezone.now() - timedelta(minutes=2))
    assert webhooks_sweep_task.delay().get(timeout=30) == {"events": 1, "deliveries": 0}
    assert (
        webhook_event_process_task.delay(lost.pk).get(timeout=30) == "processed"
    )  # waits for the sweep's copy
    assert WebhookEvent.objects.get(pk=fresh.pk).status == WebhookEventStatus.RECEIVED  # not lost yet
    assert len(updates(crm_customer)) == 1


@pytest.mark.django_db
def test_admin_shows_unmatched_events_and_processes_them_again(
    admin_client, demo_source, django_capture_on_commit_callbacks
):
    event = webhook_event_process(event_id=stored(demo_source, shipped(external_id="crm-404")).pk)
    page = admin_client.get("/admin/webhooks/webhookevent/", {"status__exact": "unmatched"})
    assert page.status_code == 200
    assert "order.shipped" in page.content.decode()
    detail = admin_client.get(f"/admin/webhooks/webhookevent/{event.pk}/change/").content.decode()
    assert "No customer has this external_id or e-mail." in detail
    with django_capture_on_commit_callbacks() as queued:
        response = admin_client.post(
            "/admin/webhooks/webhookevent/", {"action": "reprocess", "_selected_action": [str(event.pk)]}
        )
    assert (response.status_code, len(queued)) == (302, 1)
    for url in ("webhooksource", "webhookendpoint", "eventdelivery"):
        assert admin_client.get(f"/admin/webhooks/{url}/").status_code == 200


@pytest.mark.django_db
def test_processing_a_matched_event_costs_these_queries(demo_source, crm_customer, django_assert_num_queries):
    receipt = message_receive(customer_id=crm_customer.pk, client_msg_id=uuid.uuid4(), text="hi")
    event = stored(demo_source, shipped())
    # savepoint, event FOR UPDATE, customer FOR UPDATE, open conversation, event_emit (seq and
    # insert in one statement), webhook event UPDATE, release savepoint
    with django_assert_num_queries(7):
        processed = webhook_event_process(event_id=event.pk)
    assert (processed.conversation_id, processed.seq) == (receipt.conversation.pk, 2)
