"""The demo CRM/ERP's signed webhook reaches Kefu's intake and Ada's open chat: shipping PP-1002
in the demo system shows her an `update` with the carrier and tracking number."""

from __future__ import annotations

import uuid

import pytest
from asgiref.sync import sync_to_async
from django.conf import settings

from apps.customers.services import user_hash_for
from apps.webhooks.services import webhook_source_demo_ensure
from tests.support.process import demo_crm_start
from tests.support.sockets import Customer, widget_session

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.e2e]


async def test_order_shipped_in_the_demo_system_reaches_adas_chat(
    celery_worker_live, web_server, tmp_path
):
    await sync_to_async(webhook_source_demo_ensure)()
    server = web_server(ASSISTANT_TOKEN_DELAY_S="0")
    crm = demo_crm_start(
        tmp_path / "crm.log",
        DEMO_CRM_KEFU_URL=server.http_url,
        DEMO_WEBHOOK_SECRET=settings.DEMO_WEBHOOK_SECRET,
    )
    session = await widget_session(
        server.http_url,
        user_id="demo-customer-1",
        user_hash=user_hash_for(user_id="demo-customer-1"),
        name="Ada Lovelace",
        email="ada@example.com",
    )
    ada = Customer(server.ws_url, session["token"])
    try:
        assert (await ada.connect())["type"] == "ready"
        await ada.send({"type": "message", "client_msg_id": str(uuid.uuid4()), "text": "Hello"})
        await ada.recv_until("message_end", timeout=60)

        shipped = crm.admin("POST", "orders/PP-1002/ship")
        update = (await ada.recv_until("update", timeout=60))[-1]
    finally:
        await ada.close()
        crm.proc.terminate()
        crm.proc.wait(10)

    tracking = shipped["order"]["shipment"]["tracking_number"]
    assert shipped["webhook"] is True
    assert update["type"] == "update"
    assert update["title"] == "Your order PP-1002 has shipped"
    assert f"Tracking number: {tracking}" in update["body"]
    assert "Carrier: DHL" in update["body"]
