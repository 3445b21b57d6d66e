"""The builtin provider with tools: intents recognised, the real data phrased and cited."""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async

from apps.assistant.providers.base import Turn
from apps.assistant.providers.builtin import BuiltinProvider
from apps.assistant.providers.builtin_tools import tool_intent
from apps.connectors.demo import DEMO_TOOLS
from apps.connectors.services import tool_call_confirm
from tests.support.toolbox import box_for

ALL = {t["name"] for t in DEMO_TOOLS}


@pytest.mark.parametrize(
    ("question", "name", "arguments"),
    [
        ("Where is my order PP-1001?", "shipment_track", {"order_number": "PP-1001"}),
        ("what's the status of pp-1002", "order_status", {"order_number": "PP-1002"}),
        (
            "I want a refund for PP-1001",
            "refund_request",
            {"order_number": "PP-1001", "reason": "I want a refund for PP-1001"},
        ),
        (
            "Please cancel PP-1002",
            "order_cancel",
            {"order_number": "PP-1002", "reason": "Please cancel PP-1002"},
        ),
        ("Where is my order?", "orders_list", {}),
        ("Is the copper kettle in stock?", "stock_check", {"query": "copper kettle"}),
        ("What is the status of ticket T-5001?", "ticket_status", {"ticket_id": "T-5001"}),
        (
            "Please open a ticket: my lamp flickers",
            "ticket_create",
            {
                "subject": "Please open a ticket: my lamp flickers",
                "body": "Please open a ticket: my lamp flickers",
            },
        ),
    ],
)
def test_intents(question, name, arguments):
    intent = tool_intent(question, ALL)
    assert (intent.name, intent.arguments) == (name, arguments)


def test_no_intent_or_no_such_tool_leaves_it_to_the_knowledge_base():
    assert tool_intent("How long do returns take?", ALL) is None
    assert tool_intent("Where is my order PP-1001?", {"stock_check"}) is None


async def answer(turn):
    text, citations = "", []
    async for chunk in BuiltinProvider().answer(turn):
        text += chunk.text
        citations = chunk.citations if chunk.citations is not None else citations
    return text, citations


def turn_of(conversation, box, question, tool_call_id=None):
    return Turn(
        conversation_id=str(conversation.pk),
        question=question,
        customer_id=str(conversation.customer_id),
        tools=box,
        tool_call_id=tool_call_id,
    )


@pytest.mark.django_db(transaction=True)
@pytest.mark.e2e
async def test_order_question_answered_from_the_crm_and_cited(
    demo_connector, ada, conversation_of, celery_worker_live, settings
):
    settings.ASSISTANT_TOKEN_DELAY_S = 0
    conversation = await sync_to_async(conversation_of)(ada)
    box = await box_for(conversation)
    text, citations = await answer(turn_of(conversation, box, "Where is my order PP-1001?"))
    assert text == (
        "Order PP-1001 is shipped: it shipped on 2026-11-23 with DHL, tracking number "
        "00340434161234567890, expected by 2026-11-30. [1]"
    )
    assert [(c["n"], c["title"]) for c in citations] == [(1, "Demo CRM")]

    text, _ = await answer(turn_of(conversation, box, "And PP-2001?"))
    assert (
        text == "I couldn't find order PP-2001 on your account. Could you check the number? "
        "Would you like to talk to a person?"
    )


@pytest.mark.django_db(transaction=True)
@pytest.mark.e2e
async def test_refund_asks_first_then_reports_the_outcome(
    demo_connector, ada, conversation_of, celery_worker_live, settings
):
    settings.ASSISTANT_TOKEN_DELAY_S = 0
    conversation = await sync_to_async(conversation_of)(ada)
    box = await box_for(conversation)
    text, citations = await answer(turn_of(conversation, box, "I want a refund for PP-1001"))
    assert (text, citations) == ("Request a refund for order PP-1001? Please approve or decline above.", [])

    call_id = (await conversation.tool_calls.afirst()).pk
    await sync_to_async(tool_call_confirm)(
        customer_id=str(ada.pk), conversation_id=str(conversation.pk), call_id=str(call_id), approve=True
    )
    text, _ = await answer(
        turn_of(conversation, box, "I want a refund for PP-1001", tool_call_id=str(call_id))
    )
    assert text == "Done: refund RF-7001 of €39.00 for order PP-1001 is requested. [1]"


@pytest.mark.django_db(transaction=True)
async def test_anonymous_customer_is_asked_to_sign_in(
    demo_connector, anonymous_customer, conversation_of, settings
):
    settings.ASSISTANT_TOKEN_DELAY_S = 0
    conversation = await sync_to_async(conversation_of)(anonymous_customer)
    box = await box_for(conversation)
    text, _ = await answer(turn_of(conversation, box, "Where is my order PP-1001?"))
    assert text == "Please sign in to the shop first, so I can look up your personal details."


@pytest.mark.django_db(transaction=True)
@pytest.mark.e2e
async def test_a_system_that_keeps_failing_gets_an_apology_and_a_person(
    demo_connector, demo_crm, ada, conversation_of, celery_worker_live, settings
):
    settings.ASSISTANT_TOKEN_DELAY_S = 0
    demo_crm.faults(mode="500")
    conversation = await sync_to_async(conversation_of)(ada)
    box = await box_for(conversation)
    text, citations = await answer(turn_of(conversation, box, "Is the copper kettle in stock?"))
    assert (text, citations) == (
        "Sorry, I couldn't get that from Demo CRM just now. Would you like to talk to a person?",
        [],
    )
