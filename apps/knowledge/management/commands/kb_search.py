import json

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from apps.knowledge.errors import SearchError
from apps.knowledge.retrieval import search


class Command(BaseCommand):
    help = (
        "Search a knowledge base (hybrid by default). --json prints one object: "
        '{"query", "kb", "k", "mode", "results": [{"n", "document_id", "title", "url", "snippet", '
        '"text", "heading_path", "score", "similarity", "chunk_id", "external_id"}]}.'
    )

    def add_arguments(self, parser):
        parser.add_argument("query")
        parser.add_argument("--kb", default=settings.KB_DEFAULT_SLUG)
        parser.add_argument("--k", type=int, default=5)
        parser.add_argument("--json", action="store_true")
        parser.add_argument("--mode", choices=["hybrid", "vector", "fulltext"], default="hybrid")
        parser.add_argument(
            "--ef-search", type=int, default=None, help="HNSW ef_search (default KB_EF_SEARCH)"
        )

    def handle(self, *args, **opts):
        if opts["k"] < 1:
            raise CommandError("--k must be at least 1.")
        try:
            passages = search(
                kb_slug=opts["kb"],
                query=opts["query"],
                k=opts["k"],
                mode=opts["mode"],
                ef_search=opts["ef_search"],
            )
        except SearchError as exc:
            raise CommandError(str(exc)) from exc
        if opts["json"]:
            results = [{"n": n, **p.as_dict()} for n, p in enumerate(passages, start=1)]
            self.stdout.write(
                json.dumps(
                    {
                        "query": opts["query"],
                        "kb": opts["kb"],
                        "k": opts["k"],
                        "mode": opts["mode"],
                        "results": results,
                    }
                )
            )
            return
        if not passages:
            self.stdout.write("no results")
        for n, p in enumerate(passages, start=1):
            where = f" > {p.heading_path}" if p.heading_path else ""
            self.stdout.write(f"[{n}] {p.title}{where}  (score {p.score:.4f}, similarity {p.similarity})")
            if p.url:
                self.stdout.write(f"    {p.url}")
            self.stdout.write(f"    {p.snippet}")
