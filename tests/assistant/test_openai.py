"""The `openai` provider against a real OpenAI-compatible server on loopback."""

import asyncio

import pytest

from apps.assistant.providers import ProviderUnavailable, Turn, provider_get
from apps.assistant.providers.openai import OpenAIProvider, chat_messages, cited
from tests.assistant.fake_llm import FakeLLM
from tests.assistant.test_builtin import REFUNDS, SHIPPING


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
    assert request["headers"]["Authorization"] == "Bearer sk-test"
    assert (request["body"]["model"], request["body"]["stream"]) == ("kefu-test-model", True)
    assert f"[1] {citations[0]['title']}" in request["body"]["messages"][0]["content"]
    assert request["body"]["messages"][-1] == {"role": "user", "content": "How long does a refund take?"}


@pytest.mark.django_db
def test_busy_or_failing_server_is_retried_then_answers(llm, demo_kb):
    llm.statuses = [503, 429]
    llm.deltas = ["Hi"]
    assert answer(Turn(conversation_id="c", question="hello"))[0] == ["Hi"]
    assert len(llm.requests) == 3


@pytest.mark.django_db
def test_a_refused_request_is_not_retried_and_says_why(llm, demo_kb):
    llm.statuses = [401]
    with pytest.raises(ProviderUnavailable, match="answered 401"):
        answer(Turn(conversation_id="c", question="hello"))
    assert len(llm.requests) == 1


def test_openai_needs_a_base_url_and_a_model(settings):
    settings.LLM_PROVIDER = "openai"
    settings.LLM_BASE_URL, settings.LLM_MODEL = "", ""
    with pytest.raises(ProviderUnavailable, match="needs LLM_BASE_URL and LLM_MODEL"):
        provider_get()
    settings.LLM_BASE_URL, settings.LLM_MODEL = "http://127.0.0.1:9/v1", "m"
    assert isinstance(provider_get(), OpenAIProvider)
