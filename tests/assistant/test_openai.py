"""The `openai` provider against a real OpenAI-compatible server on loopback."""

import asyncio
import dataclasses
import json

import pytest

from apps.assistant.providers import ProviderUnavailable, Turn, provider_get
from apps.assistant.providers.openai import OpenAIProvider, chat_messages, cited
from tests.support.fake_llm import FakeLLM
from tests.support.passages import passage

REFUNDS = passage("d1", "Refunds", "Refunds take 5 business days.")
SHIPPING = passage("d2", "Shipping", "We ship worldwide.")


@pytest.fixture
def llm(settings):
    with FakeLLM() as fake:
        settings.LLM_PROVIDER = "openai"
        settings.LLM_BASE_URL = fake.url
        settings.LLM_MODEL = "kefu-test-model"
        settings.LLM_API_KEY = "sk-test"
        yield fake


def answer(turn: Turn) -> tuple[list[str], list[dict] | None]:
    async def collect():
        deltas, citations = [], None
        async for chunk in provider_get().answer(turn):
            if chunk.text:
                deltas.append(chunk.text)
            if chunk.citations is not None:
                citations = chunk.citations
        return deltas, citations

    return asyncio.run(collect())


def test_messages_number_the_passages_then_history_then_the_question():
    history = [{"role": "customer", "text": "Refunds?"}, {"role": "assistant", "text": "5 days [1]"}]
    turn = Turn(conversation_id="c", question="And shipping?", history=history)
    messages = chat_messages(turn, [REFUNDS, SHIPPING])

    assert messages[0]["role"] == "system"
    assert "[1] Refunds\nRefunds take 5 business days." in messages[0]["content"]
    assert "[2] Shipping\nWe ship worldwide." in messages[0]["content"]
    assert messages[1:] == [
        {"role": "user", "content": "Refunds?"},
        {"role": "assistant", "content": "5 days [1]"},
        {"role": "user", "content": "And shipping?"},
    ]


def test_citations_are_the_passages_the_text_refers_to():
    assert [c["n"] for c in cited("Free over 50 euros [2]. Also [2] and [7].", [REFUNDS, SHIPPING])] == [2]
    assert cited("No idea, sorry.", [REFUNDS]) == []


@pytest.mark.django_db
def test_answer_streams_the_models_deltas_and_cites_the_knowledge_base(llm, demo_kb):
    llm.deltas = ["Refunds reach your card ", "within 5 business days ", "[1]."]

    deltas, citations = answer(Turn(conversation_id="c", question="How long does a refund take?"))

    assert deltas == llm.deltas
    assert len(citations) == 1 and citations[0]["n"] == 1 and citations[0]["url"].startswith("https://")
    [request] = llm.requests
    assert request["path"] == "/v1/chat/completions"
    assert {k.lower(): v for k, v in request["headers"].items()}["authorization"] == "Bearer sk-test"
    assert (request["body"]["model"], request["body"]["stream"]) == ("kefu-test-model", True)
    assert f"[1] {citations[0]['title']}" in request["body"]["messages"][0]["content"]
    assert request["body"]["messages"][-1] == {"role": "user", "content": "How long does a refund take?"}


@pytest.mark.django_db
def test_busy_or_failing_server_is_retried_then_answers(llm, demo_kb):
    llm.statuses = [503, 429]
    llm.deltas = ["Hi"]
    assert answer(Turn(conversation_id="c", question="How long does a refund take?"))[0] == ["Hi"]
    assert len(llm.requests) == 3


@pytest.mark.django_db
def test_a_refused_request_is_not_retried_and_says_why(llm, demo_kb):
    llm.statuses = [401]
    with pytest.raises(ProviderUnavailable, match="answered 401"):
        answer(Turn(conversation_id="c", question="How long does a refund take?"))
    assert len(llm.requests) == 1


def test_openai_needs_a_base_url_and_a_model(settings):
    settings.LLM_PROVIDER = "openai"
    settings.LLM_BASE_URL, settings.LLM_MODEL = "", ""
    with pytest.raises(ProviderUnavailable, match="needs LLM_BASE_URL and LLM_MODEL"):
        provider_get()
    settings.LLM_BASE_URL, settings.LLM_MODEL = "http://127.0.0.1:9/v1", "m"
    assert isinstance(provider_get(), OpenAIProvider)


# -- function calling against the demo CRM/ERP (real Celery worker, real HTTP) -------------------



def tool_turn(conversation, question):
    from apps.connectors.toolbox import toolbox_for
    from apps.knowledge.models import KnowledgeBase

    # No passages: the systems' results are then cited from [1] on.
    KnowledgeBase.objects.all().delete()
    ids = {"conversation_id": str(conversation.pk), "customer_id": str(conversation.customer_id)}
    return Turn(question=question, tools=toolbox_for(**ids, turn_id=""), **ids)


@pytest.mark.django_db(transaction=True)
@pytest.mark.e2e
def test_parallel_tool_calls_feed_the_answer_and_cite_the_system(
        llm, demo_connector, ada, conversation_of, celery_worker_live):  # noqa: F811
    conversation = conversation_of(ada)
    llm.script = [
        [("call_a", "order_status", {"order_number": "PP-1001"}),
         ("call_b", "shipment_track", {"order_number": "PP-1001"})],
        ["Order PP-1001 shipped with DHL [1], tracking 00340434161234567890 [2]."],
    ]

    deltas, citations = answer(tool_turn(conversation, "Where is PP-1001?"))

    assert "".join(deltas) == "Order PP-1001 shipped with DHL [1], tracking 00340434161234567890 [2]."
    assert [(c["n"], c["title"]) for c in citations] == [(1, "Demo CRM"), (2, "Demo CRM")]
    first, second = (r["body"] for r in llm.requests)
    offered = {t["function"]["name"]: t["function"] for t in first["tools"]}
    assert len(offered) == 9 and first["parallel_tool_calls"] is True
    assert offered["order_status"]["parameters"]["required"] == ["order_number"]
    assert "external_id" not in json.dumps(first["tools"])
    assistant, *tool_messages = second["messages"][-3:]
    assert [c["function"]["name"] for c in assistant["tool_calls"]] == ["order_status", "shipment_track"]
    assert [m["tool_call_id"] for m in tool_messages] == ["call_a", "call_b"]
    status = json.loads(tool_messages[0]["content"])
    assert (status["status"], status["source"], status["cite_as"]) == ("succeeded", "Demo CRM", "[1]")
    assert status["data"]["status"] == "shipped"
    assert json.loads(tool_messages[1]["content"])["data"]["shipment"]["carrier"] == "DHL"


@pytest.mark.django_db(transaction=True)
@pytest.mark.e2e
def test_tool_rounds_are_bounded(llm, demo_connector, ada, conversation_of, celery_worker_live):  # noqa: F811
    from apps.assistant.providers.openai import MAX_TOOL_ROUNDS

    conversation = conversation_of(ada)
    llm.script = [[("c", "orders_list", {})]] * MAX_TOOL_ROUNDS + [["You have two orders [1]."]]

    deltas, _ = answer(tool_turn(conversation, "my orders"))

    assert "".join(deltas) == "You have two orders [1]."
    assert len(llm.requests) == MAX_TOOL_ROUNDS + 1
    assert "tools" not in llm.requests[-1]["body"]  # the last round must answer


@pytest.mark.django_db(transaction=True)
def test_a_write_asks_first_and_bad_arguments_come_back_as_data(
        llm, demo_connector, ada, conversation_of):  # noqa: F811
    conversation = conversation_of(ada)
    llm.script = [
        [("c1", "refund_request", {"order_number": "PP-1001"}),
         ("c2", "order_status", {"order_number": "x"})],
        ["Please approve or decline the refund above."],
    ]

    deltas, _ = answer(tool_turn(conversation, "refund PP-1001"))

    assert "".join(deltas) == "Please approve or decline the refund above."
    refund, bad = (json.loads(m["content"]) for m in llm.requests[1]["body"]["messages"][-2:])
    assert refund["status"] == "awaiting_confirmation"
    assert refund["message"] == "Request a refund for order PP-1001?"
    assert (bad["status"], bad["data"]["error"]) == ("failed", "invalid_arguments")
    assert conversation.tool_calls.get().status == "awaiting_confirmation"


@pytest.mark.django_db(transaction=True)
@pytest.mark.e2e
def test_an_approved_write_runs_and_the_model_reports_it(
        llm, demo_connector, ada, conversation_of, celery_worker_live):  # noqa: F811
    from apps.connectors.services import tool_call_confirm

    conversation = conversation_of(ada)
    turn = tool_turn(conversation, "refund PP-1001")
    asked = asyncio.run(turn.tools.call("refund_request", {"order_number": "PP-1001"}))
    tool_call_confirm(customer_id=str(ada.pk), conversation_id=str(conversation.pk), call_id=asked.call_id,
                      approve=True)
    llm.script = [["Your refund RF-7001 of €39.00 is requested [1]."]]

    deltas, citations = answer(dataclasses.replace(turn, tool_call_id=asked.call_id))

    assert "".join(deltas) == "Your refund RF-7001 of €39.00 is requested [1]."
    assert [(c["n"], c["title"]) for c in citations] == [(1, "Demo CRM")]
    [request] = llm.requests
    reported = json.loads(request["body"]["messages"][-1]["content"])
    assert (reported["status"], reported["data"]["id"]) == ("succeeded", "RF-7001")
    assert reported["cite_as"] == "[1]"
    assert conversation.tool_calls.get().status == "succeeded"
