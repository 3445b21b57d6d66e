"""Tool calls through the toolbox the assistant uses, a real Celery worker and the demo CRM/ERP
over HTTP: events in order, the real data, identity from the session, confirmed writes."""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async

from apps.connectors.models import ToolCall
from apps.connectors.services import tool_call_confirm
from apps.conversations.errors import ConversationConflict, ConversationForbidden
from tests.support.toolbox import box_for, statuses

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.e2e]


async def test_order_status_runs_in_a_worker_with_events_in_order(
    demo_connector, ada, conversation_of, celery_worker_live, listen
):
    conversation = await sync_to_async(conversation_of)(ada)
    listener = await listen(conversation.pk)
    box = await box_for(conversation)

    outcome = await box.call("order_status", {"order_number": "PP-1001"})

    assert (outcome.status, outcome.source) == ("succeeded", "Demo CRM")
    assert outcome.data["status"] == "shipped"
    assert outcome.data["shipment"]["tracking_number"] == "00340434161234567890"
    assert "customer" not in outcome.data  # trimmed to the configured fields
    events = await listener.tool_events(3)
    assert statuses(events) == ["queued", "running", "succeeded"]
    assert [e["seq"] for e in events] == [1, 2, 3]
    assert {e["detail"] for e in events} == {"Looking up your order…"}
    assert {e["call_id"] for e in events} == {outcome.call_id}
    assert all(
        set(e) == {"type", "conversation_id", "seq", "call_id", "name", "status", "detail"} for e in events
    )  # no arguments or results in the customer's stream
    row = await ToolCall.objects.aget(pk=outcome.call_id)
    assert (row.status, row.attempts, row.http_status, row.arguments) == (
        "succeeded",
        1,
        200,
        {"order_number": "PP-1001"},
    )


async def test_ada_asking_about_graces_order_learns_nothing(
    demo_connector, ada, conversation_of, celery_worker_live, listen
):
    conversation = await sync_to_async(conversation_of)(ada)
    listener = await listen(conversation.pk)
    box = await box_for(conversation)

    outcome = await box.call("order_status", {"order_number": "PP-2001"})

    assert outcome.status == "failed"
    assert outcome.data["error"] == "not_found"
    assert "delivered" not in str(outcome.data) and "Grace" not in str(outcome.data)
    assert statuses(await listener.tool_events(3)) == ["queued", "running", "failed"]
    row = await ToolCall.objects.aget(pk=outcome.call_id)
    assert (row.attempts, row.http_status) == (1, 404)  # a 4xx is not retried


async def test_identity_comes_from_the_session_not_the_arguments(demo_connector, ada, conversation_of):
    conversation = await sync_to_async(conversation_of)(ada)
    box = await box_for(conversation)
    outcome = await box.call("orders_list", {"customer_id": "demo-customer-2"})
    assert (outcome.status, outcome.data["error"]) == ("failed", "invalid_arguments")
    assert "external_id" not in str(box.specs())  # the model never sees identity fields
    assert "{customer." not in str(box.specs())
    assert await ToolCall.objects.acount() == 0


async def test_anonymous_customer_is_asked_to_sign_in(demo_connector, anonymous_customer, conversation_of):
    conversation = await sync_to_async(conversation_of)(anonymous_customer)
    box = await box_for(conversation)
    outcome = await box.call("orders_list", {})
    assert outcome.status == "denied"
    assert "sign in" in outcome.message
    assert await ToolCall.objects.acount() == 0


async def test_refund_waits_for_approval_then_runs_once(
    demo_connector, demo_crm, ada, conversation_of, celery_worker_live, listen
):
    conversation = await sync_to_async(conversation_of)(ada)
    listener = await listen(conversation.pk)
    box = await box_for(conversation)

    asked = await box.call("refund_request", {"order_number": "PP-1001", "reason": "It arrived broken"})

    assert asked.status == "awaiting_confirmation"
    assert asked.message == "Request a refund for order PP-1001?"
    [question] = await listener.tool_events(1)
    assert (question["status"], question["detail"]) == (
        "awaiting_confirmation",
        "Request a refund for order PP-1001?\norder_number: PP-1001\nreason: It arrived broken",
    )
    assert demo_crm.writes() == []  # nothing happens before the customer says yes

    approved = await sync_to_async(tool_call_confirm)(
        customer_id=str(ada.pk), conversation_id=str(conversation.pk), call_id=asked.call_id, approve=True
    )
    outcome = await box.resume(asked.call_id)

    assert approved is True
    assert outcome.status == "succeeded"
    assert (outcome.data["order"], outcome.data["amount"], outcome.data["status"]) == (
        "PP-1001",
        "39.00",
        "requested",
    )
    assert statuses(await listener.tool_events(3)) == ["queued", "running", "succeeded"]
    row = await ToolCall.objects.aget(pk=asked.call_id)
    assert demo_crm.writes(row.idempotency_key) == [{"key": row.idempotency_key, "requests": 1, "effects": 1}]
    with pytest.raises(ConversationConflict):
        await sync_to_async(tool_call_confirm)(
            customer_id=str(ada.pk), conversation_id=str(conversation.pk), call_id=asked.call_id, approve=True
        )


async def test_declined_write_does_nothing(demo_connector, demo_crm, ada, conversation_of, listen):
    conversation = await sync_to_async(conversation_of)(ada)
    listener = await listen(conversation.pk)
    box = await box_for(conversation)
    asked = await box.call("order_cancel", {"order_number": "PP-1002"})

    approved = await sync_to_async(tool_call_confirm)(
        customer_id=str(ada.pk), conversation_id=str(conversation.pk), call_id=asked.call_id, approve=False
    )

    assert approved is False
    events = await listener.tool_events(2)
    assert statuses(events) == ["awaiting_confirmation", "declined"]
    assert events[1]["detail"] == "Declined: Cancel order PP-1002?"
    assert (await box.resume(asked.call_id)).status == "declined"
    assert demo_crm.writes() == []
    assert demo_crm.get("/customers/demo-customer-1/orders/PP-1002").json()["status"] == "processing"


async def test_only_the_conversations_customer_can_confirm(
    demo_connector, ada, anonymous_customer, conversation_of
):
    conversation = await sync_to_async(conversation_of)(ada)
    box = await box_for(conversation)
    asked = await box.call("ticket_create", {"subject": "Lamp flickers"})
    with pytest.raises(ConversationForbidden):
        await sync_to_async(tool_call_confirm)(
            customer_id=str(anonymous_customer.pk),
            conversation_id=str(conversation.pk),
            call_id=asked.call_id,
            approve=True,
        )
    assert (await ToolCall.objects.aget(pk=asked.call_id)).status == "awaiting_confirmation"


@pytest.mark.parametrize(
    ("auth_type", "username"),
    [("bearer", ""), ("api_key_header", ""), ("basic", "kefu"), ("oauth2_client_credentials", "kefu-client")],
)
async def test_every_auth_type_reaches_the_system_and_no_secret_leaks(
    demo_connector, demo_crm, ada, conversation_of, celery_worker_live, listen, auth_type, username, caplog
):
    from apps.connectors.models import Connector
    from apps.conversations.models import ConversationEvent
    from tests.support.process import DEMO_CRM_TOKEN as TOKEN

    await Connector.objects.filter(pk=demo_connector.pk).aupdate(
        auth_type=auth_type,
        username=username,
        api_key_header="X-API-Key",
        oauth2_token_url=f"{demo_crm.url}/oauth/token",
    )
    conversation = await sync_to_async(conversation_of)(ada)
    box = await box_for(conversation)

    outcome = await box.call("customer_profile", {})

    assert (outcome.status, outcome.data) == (
        "succeeded",
        {"name": "Ada Lovelace", "email": "ada@example.com", "tier": "gold", "since": "2021-03-14"},
    )
    row = await ToolCall.objects.aget(pk=outcome.call_id)
    stored = [e.payload async for e in ConversationEvent.objects.filter(conversation=conversation)]
    assert TOKEN not in f"{row.arguments}{row.result}{row.error}{stored}{caplog.text}{box.specs()}"


async def test_a_write_marked_safe_with_a_reason_runs_without_asking(
    demo_connector, ada, conversation_of, celery_worker_live
):
    from apps.connectors.models import Tool

    await Tool.objects.filter(name="ticket_create").aupdate(
        requires_confirmation=False, confirmation_waived_reason="A ticket only notifies our team."
    )
    box = await box_for(await sync_to_async(conversation_of)(ada))
    outcome = await box.call("ticket_create", {"subject": "Lamp flickers"})
    assert (outcome.status, outcome.data["subject"]) == ("succeeded", "Lamp flickers")


async def test_a_call_for_an_anonymous_visitor_fails_before_any_request(
    demo_connector, anonymous_customer, conversation_of, listen
):
    from apps.connectors.models import Tool
    from apps.connectors.services import tool_call_request

    conversation = await sync_to_async(conversation_of)(anonymous_customer)
    listener = await listen(conversation.pk)
    tool = await Tool.objects.select_related("connector").aget(name="orders_list")
    call = await sync_to_async(tool_call_request)(
        conversation_id=conversation.pk, turn_id=None, tool=tool, arguments={}
    )
    assert (call.status, call.detail, call.attempts) == (
        "failed",
        "Please sign in first, so I can look this up for you.",
        0,
    )
    [event] = await listener.tool_events(1)
    assert (event["status"], event["detail"]) == ("failed", call.detail)


async def test_a_tool_sending_the_email_waits_for_a_verified_email(demo_connector, ada, conversation_of):
    from apps.connectors.models import Tool
    from apps.customers.models import Customer

    await Tool.objects.filter(name="customer_profile").aupdate(query_map={"email": "{customer.email}"})
    conversation = await sync_to_async(conversation_of)(ada)
    box = await box_for(conversation)
    assert "customer_profile" not in {s["name"] for s in box.specs()}
    assert (await box.call("customer_profile", {})).status == "denied"
    await Customer.objects.filter(pk=ada.pk).aupdate(email_verified=True)
    assert "customer_profile" in {s["name"] for s in (await box_for(conversation)).specs()}


async def test_the_tools_a_claimed_answer_gets_wait_for_a_verified_email_too(demo_connector, ada):
    """The runner's path: the claim reads the customer in its own statement (turn_store) and
    the tools are built from that row, not from the ids a caller passes."""
    import uuid

    from apps.assistant.turns import _claim_next
    from apps.connectors.models import Tool
    from apps.conversations.models import Conversation, ConversationState
    from apps.customers.models import Customer
    from apps.realtime.chat_queries import message_receive_deferred

    await Tool.objects.filter(name="customer_profile").aupdate(query_map={"email": "{customer.email}"})

    async def tools_of_the_next_answer() -> set[str]:
        receipt, _ = await sync_to_async(message_receive_deferred)(
            customer_id=ada.pk, client_msg_id=uuid.uuid4(), text="What is on my profile?"
        )
        conversation_id = str(receipt.conversation.pk)
        claim = await sync_to_async(_claim_next)(owner="toolbox-test", conversation_id=conversation_id)
        turn = claim.context()
        assert turn.customer_id == str(ada.pk)
        # Closed, so the next message starts a conversation (and an answer) of its own.
        await Conversation.objects.filter(pk=conversation_id).aupdate(state=ConversationState.CLOSED)
        return {s["name"] for s in turn.tools.specs()}

    assert "customer_profile" not in await tools_of_the_next_answer()  # typed, unverified e-mail
    await Customer.objects.filter(pk=ada.pk).aupdate(email_verified=True)
    assert "customer_profile" in await tools_of_the_next_answer()
