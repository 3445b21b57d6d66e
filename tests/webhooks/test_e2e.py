"""End to end: a real uvicorn, a real Celery worker, real `websockets` clients, signed POSTs
(and the demo CRM/ERP process shipping an order) -> the customer sees the `update`."""

from __future__ import annotations

import uuid

import httpx
import pytest
from asgiref.sync import sync_to_async
from django.db import connections

from apps.conversations.models import ConversationEvent
from apps.customers.tokens import widget_token_issue
from apps.webhooks.services import webhook_source_demo_ensure
from tests.support.factories import CustomerFactory
from tests.support.process import demo_crm_start
from tests.support.sockets import Customer
from tests.support.webhooks import shipped, signed

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
async def _close_sync_thread_connections():
    """asgiref's shared sync thread keeps a database connection; the test database is dropped
    at the end of the run, so close it after each test (as tests/realtime/conftest.py does)."""
    yield
    await sync_to_async(connections.close_all)()


@sync_to_async
def identified(external_id: str) -> tuple[str, str]:
    """(customer id, widget token) of an identified customer, and the demo-crm source."""
    webhook_source_demo_ensure()
    customer = CustomerFactory(name="Ada Lovelace", external_id=external_id, email="ada@example.com")
    return str(customer.pk), widget_token_issue(customer_id=customer.pk)[0]


async def post_signed(server, event: dict) -> httpx.Response:
    body, headers = signed(event)
    async with httpx.AsyncClient() as client:
        return await client.post(f"{server.http_url}/webhooks/demo-crm/", content=body, headers=headers)


async def test_a_customer_chatting_sees_the_update_in_their_conversation(web_server, celery_worker_live):
    server = web_server(ASSISTANT_TOKEN_DELAY_S="0")
    _, token = await identified("crm-123")
    ada = Customer(server.ws_url, token)
    await ada.connect()
    await ada.send({"type": "message", "client_msg_id": str(uuid.uuid4()), "text": "where is my order?"})
    chat = await ada.recv_until("message_end")
    conversation_id = chat[0]["conversation_id"]
    last_seq = max(e.get("seq", 0) for e in chat if e["type"] != "ack")

    response = await post_signed(server, shipped())
    assert (response.status_code, response.json()) == (202, {"status": "accepted"})
    [update] = [e for e in await ada.recv_until("update") if e["type"] == "update"]
    assert update == {
        "type": "update",
        "conversation_id": conversation_id,
        "seq": last_seq + 1,
        "kind": "order.shipped",
        "title": "Your order PP-1002 has shipped",
        "body": "Tracking number: 1Z999",
        "data": {"order_id": "PP-1002", "tracking_number": "1Z999"},
    }
    # Stored in the history: a socket that resumes gets it again.
    await ada.close()
    again = Customer(server.ws_url, token)
    ready = await again.connect()
    assert (ready["conversation_id"], ready["last_seq"]) == (conversation_id, last_seq + 1)
    await again.send({"type": "resume", "conversation_id": conversation_id, "last_seq": last_seq})
    replay = await again.recv_until("resumed")
    assert [(e["type"], e.get("seq")) for e in replay] == [("update", last_seq + 1), ("resumed", None)]
    await again.close()


async def test_a_socket_that_follows_no_conversation_yet_gets_the_update_in_a_new_one(
    web_server, celery_worker_live
):
    server = web_server()
    customer_id, token = await identified("crm-123")
    tabs = [Customer(server.ws_url, token), Customer(server.ws_url, token)]
    for tab in tabs:
        ready = await tab.connect()
        assert (ready["type"], ready["conversation_id"], ready["last_seq"]) == ("ready", None, 0)

    assert (await post_signed(server, shipped())).status_code == 202
    for tab in tabs:
        [update] = [e for e in await tab.recv_until("update") if e["type"] == "update"]
        assert (update["seq"], update["title"]) == (1, "Your order PP-1002 has shipped")
    stored = await sync_to_async(ConversationEvent.objects.get)(type="update")
    assert (str(stored.conversation_id), stored.seq) == (update["conversation_id"], 1)

    # A second update goes to the conversation the first one opened.
    assert (await post_signed(server, shipped(order_id="PP-1001"))).status_code == 202
    for tab in tabs:
        [update] = [e for e in await tab.recv_until("update") if e["type"] == "update"]
        assert (update["seq"], update["conversation_id"]) == (2, str(stored.conversation_id))
        await tab.close()


async def test_the_demo_crm_ships_an_order_and_ada_sees_it(web_server, celery_worker_live, tmp_path):
    server = web_server()
    _, token = await identified("demo-customer-1")
    crm = demo_crm_start(tmp_path / "demo_crm.log", DEMO_CRM_KEFU_URL=server.http_url)
    try:
        ada = Customer(server.ws_url, token)
        await ada.connect()
        shipped_order = await sync_to_async(crm.admin)("POST", "orders/PP-1002/ship")
        assert shipped_order["webhook"] is True
        [update] = [e for e in await ada.recv_until("update") if e["type"] == "update"]
        tracking = shipped_order["order"]["shipment"]["tracking_number"]
        assert (update["kind"], update["title"], update["body"]) == (
            "order.shipped",
            "Your order PP-1002 has shipped",
            f"Carrier: DHL\nTracking number: {tracking}",
        )
        await ada.close()
    finally:
        crm.proc.terminate()
        crm.proc.wait(10)


async def test_the_server_answers_413_for_2_mib_and_unknown_connectors_404(web_server):
    server = web_server()
    await sync_to_async(webhook_source_demo_ensure)()
    body, headers = signed({"type": "order.shipped", "data": {"pad": "x" * (2 * 1024 * 1024)}})
    async with httpx.AsyncClient(timeout=30) as client:
        too_big = await client.post(f"{server.http_url}/webhooks/demo-crm/", content=body, headers=headers)
        unknown = await client.post(f"{server.http_url}/webhooks/nope/", content=b"{}", headers=headers)
    assert (too_big.status_code, too_big.json()["error"]) == (413, "payload_too_large")
    assert unknown.status_code == 404
