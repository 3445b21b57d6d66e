from django.core.management.base import BaseCommand, CommandError

from apps.knowledge.errors import KnowledgeError
from apps.knowledge.selectors import knowledge_base_get
from apps.knowledge.services import knowledge_base_reembed


class Command(BaseCommand):
    help = (
        "Re-embed every chunk of a knowledge base with the configured EMBEDDING_PROVIDER/EMBEDDING_MODEL "
        "and switch the knowledge base to that model (searching and ingesting refuse a knowledge base "
        "whose model differs from the configured one until this has run). Runs in this process."
    )

    def add_arguments(self, parser):
        parser.add_argument("--kb", required=True)

    def handle(self, *args, **opts):
        kb = knowledge_base_get(slug=opts["kb"])
        if kb is None:
            raise CommandError(f"There is no knowledge base {opts['kb']!r}.")
        before = f"{kb.embedding_provider}/{kb.embedding_model}"
        try:
            count = knowledge_base_reembed(kb=kb)
        except KnowledgeError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(
            f"re-embedded {count} chunks of {kb.slug!r}: {before} -> "
            f"{kb.embedding_provider}/{kb.embedding_model}"
        )
