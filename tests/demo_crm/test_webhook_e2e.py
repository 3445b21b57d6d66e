"""The demo CRM/ERP's signed webhook reaches Kefu's intake and Ada's open chat: shipping PP-1002
in the demo system shows her an `update` with the carrier and tracking number."""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async
from django.conf import settings

from apps.webhooks.services import webhook_source_demo_ensure
from tests.support.process import demo_crm_start
from tests.support.sockets import ask, demo_customer_socket

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
    ada = None
    try:
        ada = await demo_customer_socket(server)  # connected and `ready`
        await ask(ada, "Hello")

        shipped = crm.admin("POST", "orders/PP-1002/ship")
        update = (await ada.recv_until("update", timeout=60))[-1]
    finally:
        if ada is not None:
            await ada.close()
        crm.proc.terminate()
        crm.proc.wait(10)

    tracking = shipped["order"]["shipment"]["tracking_number"]
    assert shipped["webhook"] is True
    assert update["type"] == "update"
    assert update["title"] == "Your order PP-1002 has shipped"
    assert f"Tracking number: {tracking}" in update["body"]
    assert "Carrier: DHL" in update["body"]
