"""Read-side helpers of the knowledge base (search itself is in retrieval.py)."""

from __future__ import annotations

from django.db import connection

from apps.core.runtime import runtime

from .models import Document, DocumentStatus, KnowledgeBase


def vector_column_dimensions() -> int:
    """The dimension of the chunk table's vector column as created in the database."""
    # Read once per database and process (the runtime keeps it): the column never changes while
    # the process runs, and the ingestion of every document asks.
    known: dict[str, int] = runtime().get("knowledge.vector_dimensions", dict)
    alias = connection.settings_dict["NAME"]
    if alias not in known:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT atttypmod FROM pg_attribute "
                "WHERE attrelid = 'knowledge_chunk'::regclass AND attname = 'embedding'"
            )
            known[alias] = cursor.fetchone()[0]
    return known[alias]


def knowledge_base_get(*, slug: str) -> KnowledgeBase | None:
    return KnowledgeBase.objects.filter(slug=slug).first()


def documents_progress(*, document_ids: list) -> dict[str, dict]:
    """Status and chunk progress of documents, for kb_ingest to follow a run."""
    rows = Document.objects.filter(pk__in=document_ids).values(
        "id", "status", "status_reason", "chunks_done", "chunks_total", "indexed_signature", "content_hash"
    )
    return {str(r["id"]): r for r in rows}


def document_counts(*, kb: KnowledgeBase) -> dict[str, int]:
    counts = {s.value: 0 for s in DocumentStatus}
    for row in kb.documents.values("status").order_by():
        counts[row["status"]] += 1
    return counts
