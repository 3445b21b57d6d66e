"""The `openai` provider against a real OpenAI-compatible server on loopback: the relevance
gate first, then the model's answerability judgement (structured output), then the answer, a
clarifying question with suggestions, or a decline; and function calling."""

import asyncio
import dataclasses
import json
from typing import NamedTuple

import pytest
from asgiref.sync import sync_to_async

from apps.assistant import phrases
from apps.assistant.grounding import Grounding, ground
from apps.assistant.providers import ProviderUnavailable, Turn, provider_get
from apps.assistant.providers import openai as openai_provider
from apps.assistant.providers.judge_cache import JudgeCache
from apps.assistant.providers.openai import OpenAIProvider, chat_messages, cited
from tests.support.fake_llm import FakeLLM
from tests.support.passages import passage

REFUNDS = passage("d1", "Refunds", "Refunds take 5 business days.")
SHIPPING = passage("d2", "Shipping", "We ship worldwide.")
REFUND_METHODS = passage("d1", "Refunds", "Refunds go back to the card you paid with.")
RETURNS = passage("d3", "Returns", "Return an item within 30 days.")


@pytest.fixture
def llm(settings):
    openai_provider._NO_JSON_SCHEMA.clear()  # what an earlier server on this port refused
    with FakeLLM() as fake:
        settings.LLM_PROVIDER = "openai"
        settings.LLM_BASE_URL = fake.url
        settings.LLM_MODEL = "kefu-test-model"
        settings.LLM_API_KEY = "sk-test"
        settings.LLM_JUDGE = True
        yield fake


@pytest.fixture
def gate(monkeypatch):
    """The relevance gate's decision, fixed: `gate(decision, passages, suggestions=[])`."""

    def fix(decision, passages, suggestions=()):
        grounding = Grounding(decision=decision, passages=list(passages), suggestions=list(suggestions))

        async def fixed(question, **kw):
            return grounding

        monkeypatch.setattr(openai_provider, "aground", fixed)

    return fix


class Reply(NamedTuple):
    deltas: list[str]
    citations: list[dict] | None
    outcome: str | None
    suggestions: list[dict] | None

    @property
    def text(self) -> str:
        return "".join(self.deltas)


def answer(turn: Turn) -> Reply:
    async def collect():
        deltas, citations, outcome, suggestions = [], None, None, None
        async for chunk in provider_get().answer(turn):
            if chunk.text:
                deltas.append(chunk.text)
            if chunk.citations is not None:
                citations = chunk.citations
            if chunk.outcome is not None:
                outcome = chunk.outcome
            if chunk.suggestions is not None:
                suggestions = chunk.suggestions
        return Reply(deltas, citations, outcome, suggestions)

    return asyncio.run(collect())


def ask(question: str, **kw) -> Turn:
    return Turn(conversation_id="c", question=question, **kw)


def verdict(decision: str, passages=(), question: str = "") -> dict:
    return {"decision": decision, "passages": list(passages), "question": question}


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


# -- the three outcomes -----------------------------------------------------------------------


@pytest.mark.django_db
def test_the_judge_picks_the_passage_and_the_answer_streams_citing_it(llm, demo_kb):
    question = "How long does a refund take?"
    # As the provider calls it: in a worker thread, with its own connection.
    found = asyncio.run(sync_to_async(ground, thread_sensitive=False)(question))
    assert found.decision != "handover" and len(found.passages) >= 2
    chosen = found.passages[1]  # the judge may prefer another article than retrieval's first
    llm.script = [verdict("answer", [2]), ["It takes ", "5 business days ", "[1]."]]

    reply = answer(ask(question))

    assert reply.deltas == ["It takes ", "5 business days ", "[1]."]
    assert (reply.outcome, reply.suggestions) == ("answered", None)
    assert reply.citations == [chosen.citation(1)]
    judge, stream = (r["body"] for r in llm.requests)
    assert [r["path"] for r in llm.requests] == ["/v1/chat/completions"] * 2
    assert {k.lower(): v for k, v in llm.requests[0]["headers"].items()}["authorization"] == "Bearer sk-test"
    assert (judge["model"], judge.get("stream", False), judge["temperature"]) == ("kefu-test-model", False, 0)
    schema = judge["response_format"]["json_schema"]
    assert (judge["response_format"]["type"], schema["strict"]) == ("json_schema", True)
    assert schema["schema"]["properties"]["decision"]["enum"] == ["answer", "clarify", "handover"]
    for n, p in enumerate(found.passages, 1):  # the judge reads every passage, numbered
        assert f"[{n}] {p.title}\n{p.text}" in judge["messages"][0]["content"]
    assert judge["messages"][-1] == {"role": "user", "content": question}
    # The answer is written from the judged passage alone, renumbered [1].
    assert (stream["model"], stream["stream"]) == ("kefu-test-model", True)
    assert f"[1] {chosen.title}\n{chosen.text}" in stream["messages"][0]["content"]
    assert "[2] " not in stream["messages"][0]["content"]
    assert stream["messages"][-1] == {"role": "user", "content": question}


@pytest.mark.django_db
def test_the_judge_asks_which_topic_offering_the_passages_it_names(llm, gate):
    gate("answer", [REFUNDS, SHIPPING, REFUND_METHODS, RETURNS])
    llm.script = [verdict("clarify", [3, 1, 9, 4], "Is it about a refund or about returning an item?")]

    reply = answer(ask("money back?"))

    assert reply.outcome == "clarify"
    assert reply.text == "Is it about a refund or about returning an item?"
    # One topic per article; a number the judge was not shown (9) is no topic.
    assert reply.suggestions == [{"title": "Refunds", "document_id": "d1"},
                                 {"title": "Returns", "document_id": "d3"}]
    assert reply.citations == []
    assert len(llm.requests) == 1  # the judge only: nothing to stream


@pytest.mark.django_db
def test_the_judge_hands_over_with_the_fixed_decline_and_no_answer_call(llm, gate):
    gate("answer", [REFUNDS, SHIPPING])
    llm.script = [verdict("handover")]

    reply = answer(ask("Do you sell gift cards?"))

    assert (reply.text, reply.citations, reply.outcome) == (phrases.DONT_KNOW, [], "declined")
    assert len(llm.requests) == 1


@pytest.mark.django_db
def test_a_question_the_gate_hands_over_is_declined_without_asking_the_model(llm, demo_kb):
    reply = answer(ask("Who painted the Mona Lisa?"))

    assert (reply.text, reply.citations, reply.outcome) == (phrases.DONT_KNOW, [], "declined")
    assert llm.requests == []


@pytest.mark.django_db
def test_a_model_answer_citing_nothing_is_declined(llm, gate):
    gate("answer", [REFUNDS])
    llm.script = [verdict("answer", [1]), ["I'm not sure, sorry."]]

    reply = answer(ask("How long does a refund take?"))

    assert (reply.text, reply.citations, reply.outcome) == ("I'm not sure, sorry.", [], "declined")


# -- when the judge's reply is not usable, the gate decides ---------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("reply", ["Passage 1 answers it.", '{"decision": "maybe", "passages": [1]}',
                                   '["answer"]', '{"decision": "answer", "passages": [1]'])
def test_unusable_judge_output_falls_back_to_the_gates_clarify(llm, gate, reply):
    offered = [{"title": "Refunds", "document_id": "d1"}, {"title": "Shipping", "document_id": "d2"}]
    gate("clarify", [REFUNDS, SHIPPING], offered)
    llm.script = [reply]

    result = answer(ask("refund or shipping"))

    assert (result.text, result.outcome, result.suggestions) == (phrases.CLARIFY, "clarify", offered)
    assert len(llm.requests) == 1


@pytest.mark.django_db
def test_unusable_judge_output_falls_back_to_the_gates_answer_from_every_passage(llm, gate):
    gate("answer", [REFUNDS, SHIPPING])
    llm.script = ["", ["Refunds take 5 business days [1]."]]

    reply = answer(ask("How long does a refund take?"))

    assert (reply.text, reply.outcome) == ("Refunds take 5 business days [1].", "answered")
    assert reply.citations == [REFUNDS.citation(1)]
    system = llm.requests[1]["body"]["messages"][0]["content"]
    assert "[1] Refunds\n" in system and "[2] Shipping\n" in system


@pytest.mark.django_db
def test_a_server_without_structured_output_is_judged_from_text(llm, gate):
    llm.json_schema = False  # 400 to any `response_format` json_schema
    gate("answer", [REFUNDS, SHIPPING])
    prose = 'Sure. {"decision": "answer", "passages": [2], "question": ""} Hope that helps.'
    llm.script = [prose, ["We ship worldwide [1]."], prose, ["We ship worldwide [1]."]]

    first = answer(ask("Do you ship abroad?"))
    second = answer(ask("Do you ship abroad?"))

    assert first == second
    assert (first.citations, first.outcome) == ([SHIPPING.citation(1)], "answered")
    refused, plain, _, again, _ = (r["body"] for r in llm.requests)
    assert "response_format" in refused
    assert "response_format" not in plain and "Reply with JSON only" in plain["messages"][0]["content"]
    assert "response_format" not in again  # remembered: one request per judgement from then on


@pytest.mark.django_db
def test_a_stream_ending_in_a_usage_chunk_without_choices_answers_whole(llm, gate):
    llm.usage_chunk = True
    gate("answer", [REFUNDS, SHIPPING])
    llm.script = [{"decision": "answer", "passages": [1], "question": ""},
                  ["Refunds take ", "5 business days [1]."]]

    reply = answer(ask("How long does a refund take?"))

    assert (reply.text, reply.outcome) == ("Refunds take 5 business days [1].", "answered")
    assert reply.citations == [REFUNDS.citation(1)]


@pytest.mark.parametrize("body", [
    None, [], {}, {"choices": []}, {"choices": [None]}, {"choices": [{}]}, {"choices": [{"message": None}]},
    {"choices": [{"message": {"content": 7}}]},
])
def test_a_completion_without_text_has_no_content(body):
    assert openai_provider._reply_content(body) is None


def test_a_completions_text_is_its_first_choices_content():
    body = {"choices": [{"message": {"role": "assistant", "content": "yes"}}, {"message": {"content": "no"}}]}

    assert openai_provider._reply_content(body) == "yes"


@pytest.mark.django_db
def test_the_judge_cannot_make_the_answer_cite_a_document_it_was_not_shown(llm, gate):
    gate("answer", [REFUNDS, SHIPPING])
    llm.script = [
        {"decision": "answer", "passages": [7, 2, 0, -1, "x"], "question": "",
         "document_id": "d-evil", "citations": [{"n": 3, "document_id": "d-evil", "url": "https://evil"}]},
        ["We ship worldwide [1], refunds [2], see also [3] and [7]."],
    ]

    reply = answer(ask("Do you ship abroad?"))

    assert reply.citations == [SHIPPING.citation(1)]
    assert "d-evil" not in json.dumps(reply)
    system = llm.requests[1]["body"]["messages"][0]["content"]
    assert "evil" not in system and "Refunds" not in system


@pytest.mark.django_db
def test_without_the_judge_the_gate_alone_decides(llm, gate, settings):
    settings.LLM_JUDGE = False
    gate("answer", [REFUNDS, SHIPPING])
    llm.script = [["Refunds take 5 business days [1]."]]

    reply = answer(ask("How long does a refund take?"))

    assert (reply.outcome, reply.citations) == ("answered", [REFUNDS.citation(1)])
    assert [r["body"]["stream"] for r in llm.requests] == [True]


@pytest.mark.django_db
def test_busy_or_failing_server_is_retried_then_answers(llm, gate):
    gate("answer", [REFUNDS])
    llm.statuses = [503, 429]
    llm.deltas = ["Hi"]
    assert answer(ask("How long does a refund take?")).deltas == ["Hi"]
    assert len(llm.requests) == 4  # the judge twice refused then answered, then the answer


@pytest.mark.django_db
def test_a_refused_request_is_not_retried_and_says_why(llm, gate):
    gate("answer", [REFUNDS])
    llm.statuses = [401]
    with pytest.raises(ProviderUnavailable, match="answered 401"):
        answer(ask("How long does a refund take?"))
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

    reply = answer(tool_turn(conversation, "Where is PP-1001?"))

    assert reply.text == "Order PP-1001 shipped with DHL [1], tracking 00340434161234567890 [2]."
    assert [(c["n"], c["title"]) for c in reply.citations] == [(1, "Demo CRM"), (2, "Demo CRM")]
    assert reply.outcome == "tool"
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

    reply = answer(tool_turn(conversation, "my orders"))

    assert (reply.text, reply.outcome) == ("You have two orders [1].", "tool")
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

    reply = answer(tool_turn(conversation, "refund PP-1001"))

    assert (reply.text, reply.outcome) == ("Please approve or decline the refund above.", "tool")
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

    reply = answer(dataclasses.replace(turn, tool_call_id=asked.call_id))

    assert (reply.text, reply.outcome) == ("Your refund RF-7001 of €39.00 is requested [1].", "tool")
    assert [(c["n"], c["title"]) for c in reply.citations] == [(1, "Demo CRM")]
    [request] = llm.requests
    reported = json.loads(request["body"]["messages"][-1]["content"])
    assert (reported["status"], reported["data"]["id"]) == ("succeeded", "RF-7001")
    assert reported["cite_as"] == "[1]"
    assert conversation.tool_calls.get().status == "succeeded"


def write_turn(conversation, question):
    from apps.connectors.toolbox import toolbox_for

    ids = {"conversation_id": str(conversation.pk), "customer_id": str(conversation.customer_id)}
    return Turn(question=question, tools=toolbox_for(**ids, turn_id=""), **ids)


REFUND_CALL = [("c1", "refund_request", {"order_number": "PP-1001"})]


@pytest.mark.django_db(transaction=True)
def test_the_judge_sends_a_question_for_the_systems_to_the_tools(
        llm, gate, demo_connector, ada, conversation_of):  # noqa: F811
    gate("answer", [REFUNDS, RETURNS])
    llm.script = [verdict("tool", [1]), REFUND_CALL, ["Please approve or decline the refund above."]]

    reply = answer(write_turn(conversation_of(ada), "refund PP-1001 please"))

    assert (reply.text, reply.outcome, reply.citations) == (
        "Please approve or decline the refund above.", "tool", [])
    judge, first, _ = (r["body"] for r in llm.requests)
    assert judge["response_format"]["json_schema"]["schema"]["properties"]["decision"]["enum"] == [
        "answer", "clarify", "handover", "tool"]
    assert "tools" not in judge  # the judge decides; it calls nothing
    assert "refund_request" in {t["function"]["name"] for t in first["tools"]}
    system = first["messages"][0]["content"]
    assert "[1] Refunds\n" in system and "Returns" not in system


@pytest.mark.django_db(transaction=True)
def test_a_question_the_gate_hands_over_still_reaches_the_tools_without_a_judgement(
        llm, gate, demo_connector, ada, conversation_of):  # noqa: F811
    gate("handover", [SHIPPING])
    llm.script = [REFUND_CALL, ["Please approve or decline the refund above."]]

    conversation = conversation_of(ada)
    reply = answer(write_turn(conversation, "refund PP-1001"))

    assert (reply.text, reply.outcome) == ("Please approve or decline the refund above.", "tool")
    assert [r["body"]["stream"] for r in llm.requests] == [True, True]  # no judge call
    assert "(none found)" in llm.requests[0]["body"]["messages"][0]["content"]  # no unrelated passage
    assert conversation.tool_calls.get().status == "awaiting_confirmation"


# -- identical judgements share one model call (providers/judge_cache.py) ---------------------------


async def _answer(turn) -> Reply:
    deltas, citations, outcome = [], None, None
    async for chunk in provider_get().answer(turn):
        deltas += [chunk.text] if chunk.text else []
        citations = chunk.citations if chunk.citations is not None else citations
        outcome = chunk.outcome if chunk.outcome is not None else outcome
    return Reply(deltas, citations, outcome, None)


def _on_one_loop(*turns, together: bool = False) -> list[Reply]:
    async def run():
        if together:
            return list(await asyncio.gather(*(_answer(t) for t in turns)))
        return [await _answer(t) for t in turns]

    return asyncio.run(run())


def _judgements(llm) -> int:
    return sum(not r["body"].get("stream", False) for r in llm.requests)


@pytest.mark.django_db
def test_the_same_question_again_is_judged_once_and_answered_twice(llm, gate):
    gate("answer", [REFUNDS, SHIPPING])
    llm.script = [verdict("answer", [1]), ["Refunds take 5 business days [1]."],
                  ["Refunds take 5 business days [1]."]]

    first, second = _on_one_loop(ask("How long does a refund take?"), ask("How long does a refund take?"))

    assert first == second and first.outcome == "answered"
    assert (_judgements(llm), len(llm.requests)) == (1, 3)


@pytest.mark.django_db
def test_customers_asking_the_same_at_once_wait_for_one_judgement(llm, gate):
    gate("answer", [REFUNDS, SHIPPING])
    llm.script = [verdict("answer", [2]), ["We ship worldwide [1]."], ["We ship worldwide [1]."]]

    replies = _on_one_loop(ask("Do you ship abroad?"), ask("Do you ship abroad?"), together=True)

    assert [r.text for r in replies] == ["We ship worldwide [1]."] * 2
    assert [r.citations for r in replies] == [[SHIPPING.citation(1)]] * 2
    assert (_judgements(llm), len(llm.requests)) == (1, 3)


@pytest.mark.django_db
def test_another_question_or_history_is_judged_again(llm, gate):
    gate("answer", [REFUNDS, SHIPPING])
    llm.script = [verdict("answer", [1]), ["A [1]."], verdict("answer", [1]), ["B [1]."],
                  verdict("answer", [1]), ["C [1]."]]

    _on_one_loop(ask("How long does a refund take?"), ask("How long do refunds take?"),
                 ask("How long does a refund take?", history=[{"role": "customer", "text": "Hi"}]))

    assert (_judgements(llm), len(llm.requests)) == (3, 6)


@pytest.mark.django_db
def test_an_unusable_judgement_is_asked_again(llm, gate):
    gate("answer", [REFUNDS, SHIPPING])
    llm.script = ["no idea", ["A [1]."], verdict("answer", [1]), ["B [1]."]]

    _on_one_loop(ask("How long does a refund take?"), ask("How long does a refund take?"))

    assert _judgements(llm) == 2


@pytest.mark.django_db
def test_with_the_cache_off_every_question_is_judged(llm, gate, settings):
    settings.LLM_JUDGE_CACHE = 0
    gate("answer", [REFUNDS, SHIPPING])
    llm.script = [verdict("answer", [1]), ["A [1]."], verdict("answer", [1]), ["A [1]."]]

    _on_one_loop(ask("How long does a refund take?"), ask("How long does a refund take?"))

    assert _judgements(llm) == 2


def test_a_caller_stopping_leaves_the_call_to_the_others_and_the_last_one_cancels_it():
    async def run():
        cache, release, cancelled = JudgeCache(size=8), asyncio.Event(), []

        async def ask():
            try:
                await release.wait()
            except asyncio.CancelledError:
                cancelled.append(True)
                raise
            return "answer"

        first = asyncio.ensure_future(cache.verdict({"q": 1}, ask))
        second = asyncio.ensure_future(cache.verdict({"q": 1}, ask))
        await asyncio.sleep(0)
        first.cancel()
        await asyncio.sleep(0)
        release.set()
        shared = await second
        assert (shared, cancelled, cache.calls) == ("answer", [], 1)

        release.clear()
        alone = asyncio.ensure_future(cache.verdict({"q": 2}, ask))
        await asyncio.sleep(0)
        alone.cancel()
        with pytest.raises(asyncio.CancelledError):
            await alone
        await asyncio.sleep(0)
        assert cancelled == [True]
        assert await cache.verdict({"q": 1}, ask) == "answer"  # kept: no new call
        assert cache.calls == 2

    asyncio.run(run())


def test_verdicts_are_kept_within_the_size_newest_first():
    async def run():
        cache = JudgeCache(size=1)

        async def ask():
            return "v"

        for q in (1, 2, 1):
            await cache.verdict({"q": q}, ask)
        return cache.calls

    assert asyncio.run(run()) == 3  # q=1 was dropped when q=2 came
