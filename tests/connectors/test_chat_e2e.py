"""Through the chat socket of a real server: Ada's order question gives `tool` events in order
and an answer with the order's real status; a refund approved, a cancellation declined."""

from __future__ import annotations

import pytest

from tests.support.sockets import ask, demo_customer_socket

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.e2e]


def tools_of(events):
    return [(e["name"], e["status"]) for e in events if e["type"] == "tool"]


async def test_order_question_refund_approved_and_cancel_declined(
    demo_connector, demo_crm, celery_worker_live, web_server
):
    server = web_server(ASSISTANT_TOKEN_DELAY_S="0")
    ada = await demo_customer_socket(server)
    try:
        events = await ask(ada, "Where is my order PP-1001?")
        conversation_id = events[0]["conversation_id"]
        assert tools_of(events) == [
            ("shipment_track", "queued"),
            ("shipment_track", "running"),
            ("shipment_track", "succeeded"),
        ]
        end = events[-1]
        assert end["text"] == (
            "Order PP-1001 is shipped: it shipped on 2026-11-23 with DHL, tracking number "
            "00340434161234567890, expected by 2026-11-30. [1]"
        )
        assert [c["title"] for c in end["citations"]] == ["Demo CRM"]
        durable = [e for e in events if "seq" in e and e["type"] != "ack"]
        assert [e["seq"] for e in durable] == list(range(durable[0]["seq"], durable[0]["seq"] + len(durable)))

        events = await ask(ada, "I want a refund for PP-1001", conversation_id)
        [question] = [e for e in events if e["type"] == "tool"]
        assert (question["status"], question["detail"]) == (
            "awaiting_confirmation",
            "Request a refund for order PP-1001?\norder_number: PP-1001\nreason: I want a refund for PP-1001",
        )
        assert events[-1]["text"] == "Request a refund for order PP-1001? Please approve or decline above."
        assert demo_crm.writes() == []

        await ada.send(
            {
                "type": "tool_confirm",
                "conversation_id": conversation_id,
                "call_id": question["call_id"],
                "approve": True,
            }
        )
        events = await ada.recv_until("message_end", timeout=60)
        assert tools_of(events) == [
            ("refund_request", "queued"),
            ("refund_request", "running"),
            ("refund_request", "succeeded"),
        ]
        assert events[-1]["text"] == "Done: refund RF-7001 of €39.00 for order PP-1001 is requested. [1]"
        [write] = demo_crm.writes()
        assert (write["requests"], write["effects"]) == (1, 1)

        events = await ask(ada, "Please cancel PP-1002", conversation_id)
        [question] = [e for e in events if e["type"] == "tool"]
        await ada.send(
            {
                "type": "tool_confirm",
                "conversation_id": conversation_id,
                "call_id": question["call_id"],
                "approve": False,
            }
        )
        declined = await ada.recv_until("tool", timeout=30)
        assert (declined[-1]["status"], declined[-1]["detail"]) == (
            "declined",
            "Declined: Cancel order PP-1002?",
        )
        await ada.send(
            {
                "type": "tool_confirm",
                "conversation_id": conversation_id,
                "call_id": question["call_id"],
                "approve": True,
            }
        )
        error = await ada.recv_until("error", timeout=30)
        assert error[-1]["code"] == "conflict"
        assert len(demo_crm.writes()) == 1
        assert demo_crm.get("/customers/demo-customer-1/orders/PP-1002").json()["status"] == "processing"
    finally:
        await ada.close()
