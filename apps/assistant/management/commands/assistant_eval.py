"""manage.py assistant_eval (PROTOCOL.md §5): ask the assistant each question as a customer would,
one fresh customer and conversation each, and count what became of it.

Two sources of questions:
- `--beir DIR`: a BEIR folder's queries with a qrel (and `--unanswerable FILE`), ingested into --kb;
- `--evalset demo`: the demo help center (apps/knowledge/demo_articles, ingested into --kb) and its
  dev set (apps/assistant/evalsets), one half or both;
- `--evalset demo-zh`: the same in Simplified Chinese (demo_articles_zh into a zh-hans --kb, the
  demo_zh_* dev set).
"""

import asyncio
import json
import sys
import time
from pathlib import Path
from uuid import uuid4

from django.core.management.base import BaseCommand, CommandError
from django.test.utils import override_settings

from apps.assistant.evalsets import half_of, load_questions
from apps.assistant.evalsets.scoring import Asked, inscope_summary, offtopic_summary, outcome_of
from apps.assistant.providers import Turn, provider_get
from apps.conversations.services import message_receive
from apps.customers.models import Customer
from apps.knowledge.demo import demo_knowledge_base_load, demo_slug
from apps.knowledge.embeddings import embedder_for_kb
from apps.knowledge.errors import KnowledgeError
from apps.knowledge.evaluation import beir_ingest, beir_load
from apps.knowledge.models import Document
from apps.knowledge.services import knowledge_base_get_or_create

EVAL_CUSTOMER_NAME = "assistant_eval"
# --evalset: (language of the help center, in-scope file, off-topic file)
EVALSETS = {"demo": ("en", "demo_inscope", "demo_offtopic"),
            "demo-zh": ("zh-hans", "demo_zh_inscope", "demo_zh_offtopic")}


async def _collect(turn: Turn, started: float) -> tuple[str, list[dict], str | None, list[dict], float]:
    text, citations, said, suggestions, decided = "", [], None, [], 0.0
    async for chunk in provider_get().answer(turn):
        text += chunk.text
        if chunk.citations is not None:
            citations = chunk.citations
        if chunk.suggestions is not None:
            suggestions = chunk.suggestions
        if chunk.outcome is not None:
            said, decided = chunk.outcome, time.perf_counter() - started
    # Without an outcome chunk the outcome is known when the answer ends.
    return text, citations, said, suggestions, decided or time.perf_counter() - started


def ask(*, question: str, loop: asyncio.AbstractEventLoop, external: dict[str, str]) -> Asked:
    """One customer, one conversation, one question; cited and suggested documents by external id."""
    customer = Customer.objects.create(name=EVAL_CUSTOMER_NAME)
    try:
        started = time.perf_counter()
        receipt = message_receive(customer_id=customer.pk, client_msg_id=uuid4(), text=question,
                                  new_conversation_id=uuid4())
        # In the language the conversation detected, as a chat's turn is (turn_store.turn_context).
        turn = Turn(conversation_id=str(receipt.conversation.pk), question=question,
                    customer_id=str(customer.pk), language=receipt.conversation.language)
        text, citations, said, suggestions, seconds = loop.run_until_complete(_collect(turn, started))
    finally:
        customer.delete()  # the eval leaves no customers behind
    return Asked(
        outcome=outcome_of(said=said, citations=citations),
        cited=frozenset(external.get(str(c.get("document_id")), "") for c in citations),
        suggested=tuple(external.get(str(s.get("document_id")), "") for s in suggestions),
        seconds=seconds,
        text=text,
    )


class Command(BaseCommand):
    help = (
        "Ask the configured assistant (LLM_PROVIDER) questions as a customer would, answering from --kb. "
        "--beir DIR: every BEIR query with a qrel and every question of --unanswerable; prints questions, "
        "cited_relevant, wrong_article, clarified (shares of the answerable), unanswerable, declined "
        "(share of those declined). --evalset demo: the demo help center's dev set (--half report, tune "
        "or all); prints per set the shares answered citing a right article, citing only wrong ones, "
        "clarified, declined, and p50/p95 ms to the outcome. Per-question lines go to stderr with --verbose."
    )

    def add_arguments(self, parser):
        source = parser.add_mutually_exclusive_group(required=True)
        source.add_argument("--beir", type=Path, help="folder in BEIR layout")
        source.add_argument("--evalset", choices=sorted(EVALSETS),
                            help="the demo help center and its dev set (demo-zh: in Simplified Chinese)")
        parser.add_argument("--kb", help="knowledge base slug (ingested if needed; required with --beir; "
                            "default with --evalset: the demo's, help-center or help-center-zh)")
        parser.add_argument("--unanswerable", type=Path, help="with --beir: JSON lines with _id and text")
        parser.add_argument("--half", choices=["report", "tune", "all", "even", "odd"], default="report",
                            help="with --evalset: which half of the dev set (default report); with --beir: "
                            "even or odd (first byte of sha1(query id)), else every query")
        parser.add_argument("--inscope", type=Path, help="with --evalset: in-scope questions instead of "
                            "evalsets/demo_inscope.jsonl")
        parser.add_argument("--offtopic", type=Path, help="with --evalset: off-topic questions instead of "
                            "evalsets/demo_offtopic.jsonl")
        parser.add_argument("--limit", type=int, default=0, help="ask only the first N of each set")
        parser.add_argument("--json", action="store_true", help="one compact line (default: indented)")
        parser.add_argument("--verbose", action="store_true")

    def handle(self, *args, **opts):
        started = time.perf_counter()
        language, inscope_name, offtopic_name = EVALSETS.get(opts["evalset"] or "demo")
        if not opts["kb"]:
            if opts["beir"]:
                raise CommandError("--beir needs --kb")
            opts["kb"] = demo_slug(language)
        try:
            kb = knowledge_base_get_or_create(slug=opts["kb"], language=language)
            embedder_for_kb(kb)
            if opts["beir"]:
                beir = beir_load(opts["beir"])
                beir_ingest(kb=kb, beir=beir)
                unanswerable = load_questions("", path=opts["unanswerable"]) if opts["unanswerable"] else []
                answerable = [{"_id": qid, "text": beir.queries[qid], "articles": list(rel)}
                              for qid, rel in beir.qrels.items() if qid in beir.queries]
                if opts["half"] in ("even", "odd"):  # even is the dev sets' "tune" parity
                    keep = "tune" if opts["half"] == "even" else "report"
                    answerable = [r for r in answerable if half_of(r["_id"]) == keep]
                    unanswerable = [r for r in unanswerable if half_of(r["_id"]) == keep]
            else:
                if kb.language != language:
                    raise CommandError(f"--kb {kb.slug} is a {kb.language} knowledge base; "
                                       f"--evalset {opts['evalset']} needs a {language} one.")
                demo_knowledge_base_load(language=language, slug=kb.slug)
                half = opts["half"]
                answerable = load_questions(inscope_name, half=half, path=opts["inscope"])
                unanswerable = load_questions(offtopic_name, half=half, path=opts["offtopic"])
        except (KnowledgeError, FileNotFoundError, ValueError, KeyError) as exc:
            raise CommandError(str(exc)) from exc
        if opts["limit"]:
            answerable, unanswerable = answerable[: opts["limit"]], unanswerable[: opts["limit"]]
        external = {str(pk): ext for pk, ext in Document.objects.filter(knowledge_base=kb)
                    .values_list("pk", "external_id")}
        # The answer's pacing is for eyes, not for counting.
        # One event loop for the run: a loop (and worker threads) per question costs memory.
        loop = asyncio.new_event_loop()
        with override_settings(KB_DEFAULT_SLUG=kb.slug, ASSISTANT_TOKEN_DELAY_S=0):
            inscope = [(row, self._ask(opts, row, "answerable", loop, external)) for row in answerable]
            offtopic = [(row, self._ask(opts, row, "unanswerable", loop, external)) for row in unanswerable]
        loop.close()
        summary_in, summary_off = inscope_summary(inscope), offtopic_summary(offtopic)
        if opts["beir"]:
            result = {
                "questions": summary_in["questions"],
                "cited_relevant": summary_in["cited_relevant"],
                "wrong_article": summary_in["wrong_article"],
                "clarified": summary_in["clarified"],
                "unanswerable": summary_off["questions"],
                "declined": summary_off["declined"],
            }
        else:
            result = {"evalset": opts["evalset"], "half": opts["half"], "kb": kb.slug,
                      "inscope": summary_in, "offtopic": summary_off}
        elapsed = time.perf_counter() - started
        self.stderr.write(f"{len(inscope) + len(offtopic)} questions in {elapsed:.1f} s")
        self.stdout.write(json.dumps(result, indent=None if opts["json"] else 2))

    def _ask(self, opts, row, kind, loop, external) -> Asked:
        asked = ask(question=row["text"], loop=loop, external=external)
        self._asked = getattr(self, "_asked", 0) + 1
        if self._asked % 50 == 0:
            self.stderr.write(f"asked {self._asked} questions")
        if opts["verbose"]:
            print(json.dumps({"id": row["_id"], "kind": kind, "outcome": asked.outcome,
                              "cited": sorted(asked.cited), "suggested": list(asked.suggested),
                              "expected": row.get("articles", []), "ms": round(asked.seconds * 1000),
                              "text": asked.text[:200]}), file=sys.stderr)
        return asked


