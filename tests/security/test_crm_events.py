"""CRM events reach a customer only through a proved identity (issue 15, PROTOCOL.md §2): a
visitor who typed someone's e-mail receives nothing, and the `update` carries only the fields
the source's template allows. Real uvicorn, real Celery worker, real `websockets` clients, and
Standard Webhooks signed POSTs to /webhooks/demo-crm/."""

from __future__ import annotations

import asyncio
import json
import time

import httpx
import jwt
import pytest
from asgiref.sync import sync_to_async
from django.db import connections

from apps.conversations.models import ConversationEvent
from apps.customers.models import Customer as CustomerRow
from apps.customers.services import user_hash_for
from apps.webhooks.models import WebhookEvent
from apps.webhooks.services import webhook_source_demo_ensure
from tests.support.sockets import Customer, widget_session
from tests.support.webhooks import signed

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]
JWT_SECRET = "the-host-sites-separate-jwt-secret-of-40-c"


@pytest.fixture(autouse=True)
async def _close_sync_thread_connections():
    yield
    await sync_to_async(connections.close_all)()


def order_shipped(*, external_id: str, email: str) -> dict:
    """What a CRM sends: the customer's address, phone and the order lines ride along."""
    return {
        "type": "order.shipped",
        "data": {
            "customer": {
                "external_id": external_id,
                "email": email,
                "phone": "+44 20 7946 0000",
                "address": {"line1": "12 St James's Square", "city": "London", "postcode": "SW1Y 4JH"},
            },
            "order": {
                "number": "PP-1002",
                "status": "shipped",
                "shipping_address": {"line1": "12 St James's Square", "city": "London"},
                "line_items": [{"sku": "MUG-1", "name": "Ceramic mug", "quantity": 2, "price": "16.00"}],
                "shipment": {
                    "carrier": "DHL",
                    "tracking_number": "00340434161234567890",
                    "tracking_url": "https://track.example.com/00340434161234567890",
                },
                "total": "32.00",
                "currency": "EUR",
            },
        },
    }


async def post_signed(server, event: dict) -> str:
    body, headers = signed(event)
    async with httpx.AsyncClient() as client:
        response = await client.post(f"{server.http_url}/webhooks/demo-crm/", content=body, headers=headers)
    assert (response.status_code, response.json()) == (202, {"status": "accepted"})
    return headers["webhook-id"]


async def worker_done(webhook_id: str, timeout: float = 60) -> WebhookEvent:
    """The event once the Celery worker has moved it past `received`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        event = await sync_to_async(WebhookEvent.objects.filter(webhook_id=webhook_id).first)()
        if event is not None and event.status != "received":
            return event
        await asyncio.sleep(0.1)
    raise AssertionError(f"the Celery worker did not process webhook {webhook_id} within {timeout}s")


async def nothing_pending(socket: Customer) -> list[dict]:
    """Every frame the socket holds before the answer to a ping sent now."""
    await socket.send({"type": "ping", "ts": "probe"})
    return await socket.recv_until("pong")


@sync_to_async
def durable_events_of(customer_id: str) -> list[tuple[str, int]]:
    rows = ConversationEvent.objects.filter(conversation__customer_id=customer_id).order_by("seq")
    return [(e.type, e.seq) for e in rows]


async def test_a_visitor_who_typed_someones_email_receives_nothing(web_server, celery_worker_live):
    await sync_to_async(webhook_source_demo_ensure)()
    server = web_server()
    session = await widget_session(server.http_url, name="Mallory", email="victim@example.com")
    visitor = Customer(server.ws_url, session["token"])
    try:
        ready = await visitor.connect()
        assert (ready["type"], ready["conversation_id"]) == ("ready", None)

        # The victim has an account at the CRM that Kefu has never seen.
        about_victim = order_shipped(external_id="crm-victim", email="victim@example.com")
        webhook_id = await post_signed(server, about_victim)
        event = await worker_done(webhook_id)

        assert (event.status, event.customer_id, event.conversation_id) == ("unmatched", None, None)
        assert await nothing_pending(visitor) == [{"type": "pong", "ts": "probe"}]
        assert await durable_events_of(session["customer_id"]) == []
    finally:
        await visitor.close()


async def test_an_email_proved_by_a_signed_jwt_gets_the_event_and_the_typist_does_not(
    web_server, celery_worker_live
):
    await sync_to_async(webhook_source_demo_ensure)()
    server = web_server(WIDGET_JWT_SECRET=JWT_SECRET, WIDGET_JWT_AUDIENCE="kefu")
    token = jwt.encode({"sub": "shop-ada", "exp": int(time.time()) + 600, "aud": "kefu",
                        "email": "ada@example.com"}, JWT_SECRET, algorithm="HS256")
    ada_session = await widget_session(server.http_url, user_jwt=token)
    typist_session = await widget_session(server.http_url, email="ada@example.com")
    verified = await sync_to_async(
        lambda: {str(c.pk): c.email_verified for c in CustomerRow.objects.all()}
    )()
    assert verified == {ada_session["customer_id"]: True, typist_session["customer_id"]: False}
    ada = Customer(server.ws_url, ada_session["token"])
    typist = Customer(server.ws_url, typist_session["token"])
    try:
        await ada.connect()
        await typist.connect()

        webhook_id = await post_signed(server, order_shipped(external_id="crm-77", email="Ada@Example.com"))
        [update] = [e for e in await ada.recv_until("update", timeout=60) if e["type"] == "update"]
        event = await worker_done(webhook_id)

        assert (event.status, str(event.customer_id)) == ("processed", ada_session["customer_id"])
        assert (update["kind"], update["title"]) == ("order.shipped", "Your order PP-1002 has shipped")
        assert await nothing_pending(typist) == [{"type": "pong", "ts": "probe"}]
        assert await durable_events_of(typist_session["customer_id"]) == []
    finally:
        await ada.close()
        await typist.close()


async def test_the_update_carries_only_the_templates_fields(web_server, celery_worker_live):
    await sync_to_async(webhook_source_demo_ensure)()
    server = web_server()
    session = await widget_session(
        server.http_url, user_id="crm-ada", user_hash=user_hash_for(user_id="crm-ada")
    )
    ada = Customer(server.ws_url, session["token"])
    try:
        await ada.connect()
        await post_signed(server, order_shipped(external_id="crm-ada", email="ada@example.com"))
        [update] = [e for e in await ada.recv_until("update", timeout=60) if e["type"] == "update"]
    finally:
        await ada.close()

    assert update == {
        "type": "update",
        "conversation_id": update["conversation_id"],
        "seq": 1,
        "kind": "order.shipped",
        "title": "Your order PP-1002 has shipped",
        "body": "Carrier: DHL\nTracking number: 00340434161234567890\n"
                "https://track.example.com/00340434161234567890",
        "data": {
            "order_id": "PP-1002",
            "status": "shipped",
            "carrier": "DHL",
            "tracking_number": "00340434161234567890",
            "tracking_url": "https://track.example.com/00340434161234567890",
        },
    }
    frame = json.dumps(update)
    for private in ("London", "St James", "SW1Y", "Ceramic mug", "MUG-1", "+44", "ada@example.com"):
        assert private not in frame
