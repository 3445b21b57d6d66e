import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from apps.knowledge.embeddings import embedder_for_kb
from apps.knowledge.errors import KnowledgeError
from apps.knowledge.evaluation import beir_evaluate, beir_ingest, beir_load
from apps.knowledge.services import knowledge_base_get_or_create


class Command(BaseCommand):
    help = (
        "Ingest a BEIR folder (corpus.jsonl, queries.jsonl, qrels/test.tsv) into a knowledge base, run "
        "every query with a qrel and print one JSON object: queries, k, recall_at_k, mrr_at_k, ndcg_at_k, "
        "latency_ms {p50, p95} (and mode). Ingestion runs in this process; progress goes to stderr."
    )

    def add_arguments(self, parser):
        parser.add_argument("--beir", required=True, type=Path, help="folder in BEIR layout")
        parser.add_argument("--kb", required=True, help="knowledge base slug (created if missing)")
        parser.add_argument("--k", type=int, default=10)
        parser.add_argument("--json", action="store_true", help="one compact line (default: indented)")
        parser.add_argument("--mode", choices=["hybrid", "vector", "fulltext"], default="hybrid")

    def handle(self, *args, **opts):
        if opts["k"] < 1:
            raise CommandError("--k must be at least 1.")
        try:
            beir = beir_load(opts["beir"])
            kb = knowledge_base_get_or_create(slug=opts["kb"])
            embedder_for_kb(kb)
            total = len(beir.corpus)
            done = []

            def progress(doc):
                done.append(doc)
                if len(done) % 25 == 0 or len(done) == total:
                    self.stderr.write(f"indexed {len(done)} changed documents")

            changed = beir_ingest(kb=kb, beir=beir, on_done=progress)
            self.stderr.write(f"corpus: {total} documents, {changed} (re)indexed")
            result = beir_evaluate(kb=kb, beir=beir, k=opts["k"], mode=opts["mode"])
        except (KnowledgeError, FileNotFoundError, ValueError, KeyError) as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(json.dumps(result, indent=None if opts["json"] else 2))
