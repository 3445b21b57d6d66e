"""manage.py assistant_eval (PROTOCOL.md §5) on a tiny BEIR folder and on a tiny dev set over the
demo help center, through the builtin provider (and a scripted one for outcomes it does not give)."""

import json
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.test.utils import override_settings

from apps.assistant.evalsets import half_of
from apps.assistant.providers import AnswerChunk
from apps.conversations.models import Conversation, Message
from apps.customers.models import Customer
from apps.knowledge.demo import demo_knowledge_base_load
from apps.knowledge.models import Document
from tests.fixtures import fixture_copy


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """Three answerable questions on three documents (BEIR layout) and two unanswerable ones."""
    return fixture_copy("assistant/eval-tiny", tmp_path)


# Transactional: the provider searches from a worker thread, on its own database connection.
@pytest.mark.django_db(transaction=True)
def test_each_question_is_asked_in_a_fresh_conversation_and_counted(folder, settings):
    assert settings.KB_DEFAULT_SLUG != "eval-kb"  # the command answers from --kb all the same
    out = StringIO()
    call_command("assistant_eval", beir=folder, kb="eval-kb", unanswerable=folder / "unanswerable.jsonl",
                 json=True, stdout=out, stderr=StringIO())

    assert json.loads(out.getvalue()) == {"questions": 3, "cited_relevant": 1.0, "wrong_article": 0.0,
                                          "clarified": 0.0, "unanswerable": 2, "declined": 1.0}
    # Its customers, conversations and messages are removed afterwards.
    assert (Customer.objects.count(), Conversation.objects.count(), Message.objects.count()) == (0, 0, 0)


@pytest.mark.django_db
def test_a_folder_that_is_not_beir_is_a_clear_error(tmp_path):
    with pytest.raises(CommandError, match="is not a BEIR folder: missing corpus.jsonl"):
        call_command("assistant_eval", beir=tmp_path, kb="eval-kb", stdout=StringIO(), stderr=StringIO())


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return path


def run_demo(tmp_path: Path, inscope: list[dict], offtopic: list[dict], half: str) -> dict:
    out = StringIO()
    call_command("assistant_eval", evalset="demo", kb="eval-demo", half=half, json=True,
                 inscope=write_jsonl(tmp_path / "in.jsonl", inscope),
                 offtopic=write_jsonl(tmp_path / "off.jsonl", offtopic), stdout=out, stderr=StringIO())
    result = json.loads(out.getvalue())
    for section in ("inscope", "offtopic"):  # timings vary; their presence is what is checked here
        assert set(result[section].pop("time_to_outcome_ms")) == {"p50", "p95"}
    return result


# Ids chosen by their half: T5 and O1 are in "report", T1, T3 and O2 in "tune".
DEMO_INSCOPE = [
    {"_id": "T5", "text": "Can I return bedding after opening it?", "articles": ["demo:returns-policy"]},
    {"_id": "T1", "text": "Do you deliver to Canada?", "articles": ["demo:international-shipping"]},
    # Labelled with the wrong article on purpose: the right answer then counts as a wrong article.
    {"_id": "T3", "text": "I forgot my password, how do I reset it?", "articles": ["demo:contact-us"]},
]
DEMO_OFFTOPIC = [
    {"_id": "O1", "text": "Who painted the Mona Lisa?", "source": "written"},
    {"_id": "O2", "text": "What is the capital of Australia?", "source": "clinc150"},
]


@pytest.mark.django_db(transaction=True)
def test_the_demo_dev_set_counts_right_and_wrong_articles_and_declines(tmp_path):
    result = run_demo(tmp_path, DEMO_INSCOPE, DEMO_OFFTOPIC, half="all")

    assert result == {
        "evalset": "demo", "half": "all", "kb": "eval-demo",
        "inscope": {
            "questions": 3, "cited_relevant": 0.6667, "wrong_article": 0.3333, "clarified": 0.0,
            "declined": 0.0, "tool": 0.0, "clarified_right_suggestion": 0.0,
            "counts": {"cited_relevant": 2, "wrong_article": 1, "clarified": 0, "declined": 0, "tool": 0,
                       "clarified_right_suggestion": 0},
            "by_article": {"demo:contact-us": {"questions": 1, "cited_relevant": 0},
                           "demo:international-shipping": {"questions": 1, "cited_relevant": 1},
                           "demo:returns-policy": {"questions": 1, "cited_relevant": 1}},
        },
        "offtopic": {
            "questions": 2, "declined": 1.0, "clarified": 0.0, "answered": 0.0, "tool": 0.0,
            "counts": {"declined": 2, "clarified": 0, "answered": 0, "tool": 0},
            "by_source": {"clinc150": {"questions": 1, "declined": 1},
                          "written": {"questions": 1, "declined": 1}},
        },
    }
    assert Document.objects.filter(knowledge_base__slug="eval-demo").count() == 25  # the demo help center
    assert (Customer.objects.count(), Conversation.objects.count(), Message.objects.count()) == (0, 0, 0)

    # One half asks only that half's questions.
    report = run_demo(tmp_path, DEMO_INSCOPE, DEMO_OFFTOPIC, half="report")
    assert (report["inscope"]["counts"]["cited_relevant"], report["inscope"]["questions"]) == (1, 1)
    assert (report["offtopic"]["by_source"], report["half"]) == (
        {"written": {"questions": 1, "declined": 1}}, "report")


class ScriptedProvider:
    """Outcomes the builtin provider does not give yet: per question, its chunks."""

    name = "scripted"

    def __init__(self, script: dict[str, list[AnswerChunk]]):
        self.script = script

    async def answer(self, turn):
        for chunk in self.script[turn.question]:
            yield chunk


@pytest.mark.django_db(transaction=True)
def test_clarifications_and_their_suggestions_are_counted(tmp_path, monkeypatch):
    with override_settings(KB_DEFAULT_SLUG="eval-demo"):
        demo_knowledge_base_load()
    pk = {ext: str(p) for p, ext in Document.objects.values_list("pk", "external_id")}

    def doc(slug: str) -> dict:
        return {"document_id": pk[f"demo:{slug}"], "title": slug}

    def clarify(*slugs: str) -> list[AnswerChunk]:
        return [AnswerChunk(text="Which one?", outcome="clarify", suggestions=[doc(s) for s in slugs])]

    script = {
        "wheres my parcel": clarify("order-processing-times", "tracking-your-order"),
        "money back?": clarify("contact-us"),
        "box arrived smashed": [AnswerChunk(text="Sorry [1]", citations=[doc("warranty")]),
                                AnswerChunk(outcome="answered")],
        "cancel it": [AnswerChunk(text="Hmm.", outcome="answered")],  # answered without citations: declined
        "my card got rejected": [AnswerChunk(text="Sorry, I cannot help.", outcome="declined")],
        "tell me a joke": clarify("contact-us"),
        "weather in Leeds?": [AnswerChunk(text="Rain [1]", citations=[doc("contact-us")]),
                              AnswerChunk(outcome="answered")],
        "capital of Peru?": [AnswerChunk(text="I do not know.")],
    }
    monkeypatch.setattr("apps.assistant.management.commands.assistant_eval.provider_get",
                        lambda: ScriptedProvider(script))
    inscope = [
        {"_id": "A", "text": "wheres my parcel", "articles": ["demo:tracking-your-order"]},
        {"_id": "B", "text": "money back?", "articles": ["demo:refunds"]},
        {"_id": "C", "text": "box arrived smashed",
         "articles": ["demo:damaged-or-faulty-items", "demo:warranty"]},
        {"_id": "D", "text": "cancel it", "articles": ["demo:changing-or-cancelling-an-order"]},
        {"_id": "E", "text": "my card got rejected", "articles": ["demo:payment-declined"]},
    ]
    offtopic = [{"_id": "F", "text": "tell me a joke", "source": "written"},
                {"_id": "G", "text": "weather in Leeds?", "source": "written"},
                {"_id": "H", "text": "capital of Peru?", "source": "clinc150"}]

    result = run_demo(tmp_path, inscope, offtopic, half="all")

    assert result["inscope"]["counts"] == {"cited_relevant": 1, "wrong_article": 0, "clarified": 2,
                                           "declined": 2, "tool": 0, "clarified_right_suggestion": 1}
    assert [result["inscope"][k] for k in ("cited_relevant", "clarified", "clarified_right_suggestion",
                                           "declined")] == [0.2, 0.4, 0.2, 0.4]
    assert result["offtopic"]["counts"] == {"declined": 1, "clarified": 1, "answered": 1, "tool": 0}
    assert result["offtopic"]["by_source"] == {"clinc150": {"questions": 1, "declined": 1},
                                               "written": {"questions": 2, "declined": 0}}


@pytest.mark.django_db(transaction=True)
def test_beir_halves_split_the_questions_by_the_parity_of_their_id(folder):
    """--half even|odd asks only the BEIR queries (and unanswerable questions) of that half, by the
    same sha1 rule as the dev sets (even = their "tune" half): one half to tune on, one to report."""
    def asked(half: str) -> tuple[int, int]:
        out = StringIO()
        call_command("assistant_eval", beir=folder, kb="eval-kb", unanswerable=folder / "unanswerable.jsonl",
                     half=half, json=True, stdout=out, stderr=StringIO())
        result = json.loads(out.getvalue())
        return result["questions"], result["unanswerable"]

    def ids(name: str) -> list[str]:
        return [json.loads(line)["_id"] for line in (folder / name).read_text().splitlines() if line.strip()]

    qrels = {line.split("\t")[0] for line in (folder / "qrels" / "test.tsv").read_text().splitlines()[1:]}
    total = 0
    for half, parity in (("even", "tune"), ("odd", "report")):
        answerable = [q for q in ids("queries.jsonl") if q in qrels and half_of(q) == parity]
        unanswerable = [q for q in ids("unanswerable.jsonl") if half_of(q) == parity]
        counts = asked(half)
        assert counts == (len(answerable), len(unanswerable))
        total += sum(counts)
    assert total == 3 + 2  # every question in exactly one half
