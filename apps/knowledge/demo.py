"""The demo help-center knowledge base: Markdown articles of a fictional shop, Pebble & Pine."""

from __future__ import annotations

from pathlib import Path

from django.conf import settings

from .ingestion import documents_index_inline
from .models import KnowledgeBase
from .services import document_upsert, knowledge_base_get_or_create

ARTICLES_DIR = Path(__file__).resolve().parent / "demo_articles"
DEMO_URL = "https://help.pebbleandpine.example/articles/{slug}"
DEMO_PREFIX = "demo:"


def demo_knowledge_base_load() -> KnowledgeBase:
    """Create or update the demo knowledge base (slug KB_DEFAULT_SLUG), indexing in this process.
    Idempotent: unchanged articles do nothing (the model is not even loaded); articles removed
    from the folder are removed from the knowledge base."""
    kb = knowledge_base_get_or_create(slug=settings.KB_DEFAULT_SLUG, name="Pebble & Pine help center")
    changed, external_ids = [], []
    for path in sorted(ARTICLES_DIR.glob("*.md")):
        external_id = DEMO_PREFIX + path.stem
        external_ids.append(external_id)
        doc, needs = document_upsert(
            kb=kb,
            external_id=external_id,
            filename=path.name,
            data=path.read_bytes(),
            source_url=DEMO_URL.format(slug=path.stem),
        )
        if needs:
            changed.append(doc)
    kb.documents.filter(external_id__startswith=DEMO_PREFIX).exclude(external_id__in=external_ids).delete()
    documents_index_inline(changed)
    return kb
