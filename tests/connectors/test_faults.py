"""Faults of the system behind a tool: each ends in the right result or a clear `failed`, never a
hung answer, never a repeated write (the demo CRM/ERP's per-key count proves it)."""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async

from apps.connectors.models import Connector, ToolCall
from apps.connectors.services import tool_call_confirm, tool_call_execute
from tests.support.toolbox import box_for, statuses

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.e2e]


async def ask_order(ada, conversation_of, listen):
    conversation = await sync_to_async(conversation_of)(ada)
    listener = await listen(conversation.pk)
    return await box_for(conversation), listener


async def test_a_500_is_retried_and_the_answer_is_right(
    demo_connector, demo_crm, ada, conversation_of, celery_worker_live, listen
):
    demo_crm.faults(mode="500", times=1)
    box, listener = await ask_order(ada, conversation_of, listen)
    outcome = await box.call("order_status", {"order_number": "PP-1002"})
    assert (outcome.status, outcome.data["status"]) == ("succeeded", "processing")
    events = await listener.tool_events(4)
    assert statuses(events) == ["queued", "running", "progress", "succeeded"]
    assert events[2]["detail"] == "Looking up your order… (still working on it)"
    assert (await ToolCall.objects.aget(pk=outcome.call_id)).attempts == 2


async def test_a_429_is_retried_after_retry_after(
    demo_connector, demo_crm, ada, conversation_of, celery_worker_live, listen
):
    demo_crm.faults(mode="429", times=1)
    box, _ = await ask_order(ada, conversation_of, listen)
    outcome = await box.call("stock_check", {"query": "brass lamp"})
    assert outcome.status == "succeeded"
    assert outcome.data == {
        "products": [
            {"sku": "LAMP-01", "name": "Brass desk lamp", "price": "39.00", "in_stock": True, "stock": 12}
        ]
    }
    assert (await ToolCall.objects.aget(pk=outcome.call_id)).attempts == 2


async def test_malformed_json_is_retried_then_fails_clearly(
    demo_connector, demo_crm, ada, conversation_of, celery_worker_live, listen
):
    demo_crm.faults(mode="malformed")
    box, listener = await ask_order(ada, conversation_of, listen)
    outcome = await box.call("orders_list", {})
    assert (outcome.status, outcome.data["error"]) == ("failed", "malformed")
    events = await listener.tool_events(5)
    assert statuses(events) == ["queued", "running", "progress", "progress", "failed"]
    assert events[-1]["detail"] == "Demo CRM could not be reached just now."
    row = await ToolCall.objects.aget(pk=outcome.call_id)
    assert (row.status, row.attempts) == ("failed", 3)


async def test_a_connector_timeout_fails_after_its_attempts(
    demo_connector, demo_crm, ada, conversation_of, celery_worker_live, listen
):
    await Connector.objects.filter(pk=demo_connector.pk).aupdate(read_timeout_s=0.3, max_attempts=2)
    demo_crm.faults(mode="timeout")
    box, listener = await ask_order(ada, conversation_of, listen)
    outcome = await box.call("shipment_track", {"order_number": "PP-1001"})
    assert (outcome.status, outcome.data["error"]) == ("failed", "timeout")
    assert statuses(await listener.tool_events(4)) == ["queued", "running", "progress", "failed"]


async def test_the_answer_stops_waiting_at_its_deadline(
    demo_connector, demo_crm, ada, conversation_of, celery_worker_live, listen, settings
):
    settings.TOOL_WAIT_S = 0.5
    demo_crm.faults(delay_ms=2000, times=1)
    box, listener = await ask_order(ada, conversation_of, listen)
    outcome = await box.call("order_status", {"order_number": "PP-1001"})
    assert outcome.status == "failed"
    events = await listener.tool_events(3)
    assert statuses(events) == ["queued", "running", "failed"]
    assert events[-1]["detail"] == "Demo CRM took too long to answer."


async def test_a_redelivered_write_is_done_once(demo_connector, demo_crm, ada, conversation_of, listen):
    conversation = await sync_to_async(conversation_of)(ada)
    box = await box_for(conversation)
    asked = await box.call("ticket_create", {"subject": "Lamp flickers", "body": "Since Tuesday."})
    await sync_to_async(tool_call_confirm)(
        customer_id=str(ada.pk), conversation_id=str(conversation.pk), call_id=asked.call_id, approve=True
    )
    # No worker here: run the task's body by hand, as a worker would.
    assert await sync_to_async(tool_call_execute)(call_id=asked.call_id) is None
    # A worker killed after the request but before its commit leaves the row `running`; the
    # redelivered task sends the same Idempotency-Key again.
    await ToolCall.objects.filter(pk=asked.call_id).aupdate(status="running")
    assert await sync_to_async(tool_call_execute)(call_id=asked.call_id) is None
    # A redelivery after the commit finds the call finished and sends nothing.
    assert await sync_to_async(tool_call_execute)(call_id=asked.call_id) is None

    row = await ToolCall.objects.aget(pk=asked.call_id)
    assert (row.status, row.attempts, row.result["id"]) == ("succeeded", 2, "T-5002")
    assert demo_crm.writes() == [{"key": row.idempotency_key, "requests": 2, "effects": 1}]
