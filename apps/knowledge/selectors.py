"""Read-side helpers of the knowledge base (search itself is in retrieval.py)."""

from __future__ import annotations

from django.db import connection

from .models import Document, DocumentStatus, KnowledgeBase

_column_dimensions: dict[str, int] = {}


def vector_column_dimensions() -> int:
    """The dimension of the chunk table's vector column as created in the database."""
    alias = connection.settings_dict["NAME"]
    if alias not in _column_dimensions:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT atttypmod FROM pg_attribute "
                "WHERE attrelid = 'knowledge_chunk'::regclass AND attname = 'embedding'"
            )
            _column_dimensions[alias] = cursor.fetchone()[0]
    return _column_dimensions[alias]


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
