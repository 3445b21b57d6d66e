"""Every tool call the assistant made is one audit row at its final state (succeeded, failed,
declined): who asked (the customer), the arguments the model filled, the outcome. Through the
assistant's toolbox, a real Celery worker and the demo CRM over HTTP."""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async

from apps.audit.models import AuditEntry
from apps.connectors.services import tool_call_confirm
from tests.support.toolbox import box_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.e2e]


@pytest.fixture(autouse=True)
async def _close_thread_connections(thread_connections_closed):
    yield


@sync_to_async
def rows() -> list[tuple]:
    return list(
        AuditEntry.objects.order_by("id").values_list(
            "action", "actor_id", "actor_label", "target_id", "customer_id", "ip", "detail"
        )
    )


def expected(call_id, ada, conversation, name, arguments, status, http_status, error, attempts) -> tuple:  # noqa: ANN001
    return (
        "tool_call.finish",
        None,
        f"assistant (asked by customer {ada.pk})",
        call_id,
        ada.pk,
        None,
        {
            "status": status,
            "http_status": http_status,
            "tool": name,
            "connector": "demo-crm",
            "conversation_id": str(conversation.pk),
            "customer_id": str(ada.pk),
            "arguments": arguments,
            "error": error,
            "attempts": attempts,
        },
    )


async def test_each_tool_call_is_one_row_at_its_final_state(
    demo_connector, ada, conversation_of, celery_worker_live
) -> None:
    conversation = await sync_to_async(conversation_of)(ada)
    box = await box_for(conversation)

    found = await box.call("order_status", {"order_number": "PP-1001"})
    missing = await box.call("order_status", {"order_number": "PP-2001"})  # Grace's: not found for Ada
    asked = await box.call("order_cancel", {"order_number": "PP-1002"})
    assert len(await rows()) == 2  # the question awaiting confirmation is not final: no row yet
    await sync_to_async(tool_call_confirm)(
        customer_id=str(ada.pk), conversation_id=str(conversation.pk), call_id=asked.call_id, approve=False
    )

    assert (found.status, missing.status) == ("succeeded", "failed")
    assert await rows() == [
        expected(
            found.call_id,
            ada,
            conversation,
            "order_status",
            {"order_number": "PP-1001"},
            "succeeded",
            200,
            "",
            1,
        ),
        expected(
            missing.call_id,
            ada,
            conversation,
            "order_status",
            {"order_number": "PP-2001"},
            "failed",
            404,
            "not_found: " + (await _error(missing.call_id)),
            1,
        ),
        expected(
            asked.call_id,
            ada,
            conversation,
            "order_cancel",
            {"order_number": "PP-1002"},
            "declined",
            None,
            "",
            0,
        ),
    ]


@sync_to_async
def _error(call_id: str) -> str:
    from apps.connectors.models import ToolCall

    return ToolCall.objects.get(pk=call_id).error.split(": ", 1)[1]
