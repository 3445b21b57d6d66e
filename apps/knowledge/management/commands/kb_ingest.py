import time

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from apps.knowledge.embeddings import embedder_for_kb
from apps.knowledge.errors import EmbeddingMismatch
from apps.knowledge.ingestion import (
    documents_enqueue,
    documents_index_inline,
    file_upsert,
    paths_collect,
    worker_consumes_queue,
)
from apps.knowledge.selectors import documents_progress
from apps.knowledge.services import knowledge_base_get_or_create


class Command(BaseCommand):
    help = (
        "Ingest files or folders (.md .txt .html .pdf) into a knowledge base. Unchanged files do "
        "nothing; a file that cannot be ingested is marked failed with the reason and the others go on "
        "(exit status 1 if any failed). Indexing runs as Celery tasks when a worker consumes the queue "
        "(progress is followed here), otherwise in this process; --inline forces this process."
    )

    def add_arguments(self, parser):
        parser.add_argument("paths", nargs="+", metavar="PATH")
        parser.add_argument(
            "--kb", default=settings.KB_DEFAULT_SLUG, help="knowledge base slug (created if missing)"
        )
        parser.add_argument(
            "--inline", action="store_true", help="index in this process, even if a worker runs"
        )
        parser.add_argument("--timeout", type=float, default=3600, help="seconds to follow Celery tasks")

    def handle(self, *args, **opts):
        try:
            files = paths_collect(opts["paths"])
        except FileNotFoundError as exc:
            raise CommandError(str(exc)) from exc
        kb = knowledge_base_get_or_create(slug=opts["kb"])
        try:
            embedder_for_kb(kb)
        except EmbeddingMismatch as exc:
            raise CommandError(str(exc)) from exc

        docs, changed = [], []
        for path in files:
            doc, needs = file_upsert(kb=kb, path=path)
            docs.append(doc)
            if needs:
                changed.append(doc)
            elif doc.status == "failed":
                self._report(doc)
        rejected = sum(1 for d in docs if d.status == "failed")
        unchanged = len(docs) - len(changed) - rejected
        self.stdout.write(
            f"{len(files)} files: {len(changed)} to index, {unchanged} unchanged, {rejected} rejected"
        )

        if changed and not opts["inline"] and worker_consumes_queue():
            self.stdout.write(f"indexing {len(changed)} documents on the Celery worker…")
            documents_enqueue(changed)
            self._follow([str(d.pk) for d in changed], opts["timeout"])
        elif changed:
            if not opts["inline"]:
                self.stdout.write("no Celery worker consumes the queue: indexing in this process")
            documents_index_inline(changed, on_done=self._report)

        final = documents_progress(document_ids=[d.pk for d in docs])
        failed = sum(1 for row in final.values() if row["status"] == "failed")
        ready = sum(1 for row in final.values() if row["status"] == "ready")
        self.stdout.write(f"done: {ready} ready, {failed} failed (knowledge base {kb.slug!r})")
        if failed:
            raise CommandError(f"{failed} of {len(docs)} documents failed; the reasons are above.")

    def _report(self, doc) -> None:
        name = doc.filename or doc.external_id
        if doc.status == "failed":
            self.stdout.write(self.style.ERROR(f"  failed  {name}: {doc.status_reason}"))
        else:
            self.stdout.write(f"  {doc.status:7} {name} ({doc.chunks_total} chunks)")

    def _follow(self, ids: list[str], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        reported: set[str] = set()
        last = ""
        while time.monotonic() < deadline:
            rows = documents_progress(document_ids=ids)
            for doc_id, row in rows.items():
                if row["status"] != "pending" and doc_id not in reported:
                    reported.add(doc_id)
                    from apps.knowledge.models import Document

                    self._report(Document.objects.get(pk=doc_id))
            done = sum(r["chunks_done"] for r in rows.values())
            total = sum(r["chunks_total"] for r in rows.values())
            line = f"  progress: {len(reported)}/{len(ids)} documents, {done}/{total} chunks embedded"
            if line != last:
                self.stdout.write(line)
                last = line
            if len(reported) == len(ids):
                return
            time.sleep(0.5)
        raise CommandError(
            f"Gave up following after {timeout:.0f}s; {len(ids) - len(reported)} documents are still "
            "pending on the worker. Their status is in Django admin."
        )
