"""manage.py assistant_eval (PROTOCOL.md §5): ask the assistant each BEIR question as a customer
would, one fresh customer and conversation each, and count answers citing a relevant document
and unanswerable questions declined (answered without citations)."""

import asyncio
import json
import sys
import time
from pathlib import Path
from uuid import uuid4

from django.core.management.base import BaseCommand, CommandError
from django.test.utils import override_settings

from apps.assistant.providers import Turn, provider_get
from apps.conversations.services import message_receive
from apps.customers.models import Customer
from apps.knowledge.embeddings import embedder_for_kb
from apps.knowledge.errors import KnowledgeError
from apps.knowledge.evaluation import beir_ingest, beir_load
from apps.knowledge.models import Document
from apps.knowledge.services import knowledge_base_get_or_create

EVAL_CUSTOMER_NAME = "assistant_eval"


async def _collect(turn: Turn) -> tuple[str, list[dict]]:
    text, citations = "", []
    async for chunk in provider_get().answer(turn):
        text += chunk.text
        if chunk.citations is not None:
            citations = chunk.citations
    return text, citations


def ask(*, question: str, loop: asyncio.AbstractEventLoop) -> tuple[str, list[dict]]:
    """One customer, one conversation, one question: the answer text and its citations."""
    customer = Customer.objects.create(name=EVAL_CUSTOMER_NAME)
    try:
        receipt = message_receive(customer_id=customer.pk, client_msg_id=uuid4(), text=question,
                                  new_conversation_id=uuid4())
        turn = Turn(conversation_id=str(receipt.conversation.pk), question=question,
                    customer_id=str(customer.pk))
        return loop.run_until_complete(_collect(turn))
    finally:
        customer.delete()  # the eval leaves no customers behind


class Command(BaseCommand):
    help = (
        "Ask the configured assistant (LLM_PROVIDER) every BEIR query with a qrel, and every question "
        "of --unanswerable, as a customer would, answering from --kb. Prints one JSON object: questions, "
        "cited_relevant (share of answers citing a relevant document), unanswerable, declined (share "
        "of those answered without citations). Per-question lines go to stderr with --verbose."
    )

    def add_arguments(self, parser):
        parser.add_argument("--beir", required=True, type=Path, help="folder in BEIR layout")
        parser.add_argument("--kb", required=True, help="knowledge base slug (ingested if needed)")
        parser.add_argument("--unanswerable", type=Path, help="JSON lines with _id and text")
        parser.add_argument("--limit", type=int, default=0, help="ask only the first N of each set")
        parser.add_argument("--json", action="store_true", help="one compact line (default: indented)")
        parser.add_argument("--verbose", action="store_true")

    def handle(self, *args, **opts):
        try:
            beir = beir_load(opts["beir"])
            kb = knowledge_base_get_or_create(slug=opts["kb"])
            embedder_for_kb(kb)
            beir_ingest(kb=kb, beir=beir)
            unanswerable = []
            if opts["unanswerable"]:
                lines = opts["unanswerable"].read_text().splitlines()
                unanswerable = [json.loads(line) for line in lines if line.strip()]
        except (KnowledgeError, FileNotFoundError, ValueError, KeyError) as exc:
            raise CommandError(str(exc)) from exc
        external = {str(pk): ext for pk, ext in Document.objects.filter(knowledge_base=kb)
                    .values_list("pk", "external_id")}
        answerable = [(qid, beir.queries[qid], rel) for qid, rel in beir.qrels.items() if qid in beir.queries]
        if opts["limit"]:
            answerable, unanswerable = answerable[: opts["limit"]], unanswerable[: opts["limit"]]
        started = time.perf_counter()
        # The answer's pacing is for eyes, not for counting.
        # One event loop for the run: a loop (and worker threads) per question costs memory.
        loop = asyncio.new_event_loop()
        with override_settings(KB_DEFAULT_SLUG=kb.slug, ASSISTANT_TOKEN_DELAY_S=0):
            cited_relevant = 0
            for qid, question, relevant in answerable:
                text, citations = ask(question=question, loop=loop)
                docs = {external.get(c["document_id"]) for c in citations}
                cited_relevant += bool(docs & set(relevant))
                self._log(opts, qid, "answerable", docs & set(relevant), text)
            declined = 0
            for row in unanswerable:
                text, citations = ask(question=row["text"], loop=loop)
                declined += not citations
                self._log(opts, row["_id"], "unanswerable", not citations, text)
        loop.close()
        result = {
            "questions": len(answerable),
            "cited_relevant": round(cited_relevant / max(len(answerable), 1), 4),
            "unanswerable": len(unanswerable),
            "declined": round(declined / max(len(unanswerable), 1), 4),
        }
        elapsed = time.perf_counter() - started
        self.stderr.write(f"{len(answerable) + len(unanswerable)} questions in {elapsed:.1f} s")
        self.stdout.write(json.dumps(result, indent=None if opts["json"] else 2))

    def _log(self, opts, qid, kind, ok, text):
        self._asked = getattr(self, "_asked", 0) + 1
        if self._asked % 50 == 0:
            self.stderr.write(f"asked {self._asked} questions")
        if opts["verbose"]:
            print(json.dumps({"id": qid, "kind": kind, "ok": bool(ok), "text": text[:200]}), file=sys.stderr)
