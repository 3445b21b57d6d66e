import pytest
from django.db import DatabaseError

from apps.knowledge.models import Chunk, Document
from apps.knowledge.services import document_index, document_upsert

ARTICLE = b"# Refunds\n\nWe refund within five working days.\n\n## PayPal\n\nPayPal refunds take a day.\n"
CHANGED = b"# Refunds\n\nWe refund within three working days.\n"


def ingest(kb, data: bytes, external_id: str = "refunds", filename: str = "refunds.md"):
    doc, needs = document_upsert(kb=kb, external_id=external_id, filename=filename, data=data)
    if needs:
        doc = document_index(document_id=doc.pk)
    return doc, needs


def test_ingest_indexes_chunks_with_vectors_and_tsvector(kb):
    doc, needs = ingest(kb, ARTICLE)

    assert needs is True
    assert (doc.status, doc.status_reason, doc.title, doc.chunks_done, doc.chunks_total) == (
        "ready",
        "",
        "Refunds",
        2,
        2,
    )
    chunks = list(Chunk.objects.filter(document=doc).order_by("order"))
    assert [(c.order, c.heading_path, c.text, c.title) for c in chunks] == [
        (0, "", "We refund within five working days.", "Refunds"),
        (1, "PayPal", "PayPal refunds take a day.", "Refunds"),
    ]
    assert [len(c.embedding) for c in chunks] == [384, 384]
    assert Chunk.objects.filter(knowledge_base=kb, search_vector="paypal").get() == chunks[1]


def test_reingesting_unchanged_content_does_nothing(kb):
    first, _ = ingest(kb, ARTICLE)
    chunk_ids = list(Chunk.objects.filter(document=first).values_list("id", flat=True))

    again, needs = ingest(kb, ARTICLE)

    assert needs is False
    assert again.pk == first.pk
    assert again.indexed_at == first.indexed_at
    assert list(Chunk.objects.filter(document=first).values_list("id", flat=True)) == chunk_ids
    assert Document.objects.filter(knowledge_base=kb).count() == 1


def test_changed_content_replaces_all_chunks(kb):
    first, _ = ingest(kb, ARTICLE)
    old_ids = set(Chunk.objects.filter(document=first).values_list("id", flat=True))

    doc, needs = ingest(kb, CHANGED)

    assert needs is True
    assert doc.pk == first.pk
    chunks = list(Chunk.objects.filter(document=doc))
    assert [c.text for c in chunks] == ["We refund within three working days."]
    assert not old_ids & {c.id for c in chunks}


def test_replacement_is_atomic_a_failed_insert_keeps_the_old_version(kb, monkeypatch):
    first, _ = ingest(kb, ARTICLE)
    before = list(Chunk.objects.filter(document=first).values_list("id", "text"))
    doc, _ = document_upsert(kb=kb, external_id="refunds", filename="refunds.md", data=CHANGED)

    def broken_bulk_create(*args, **kwargs):
        raise DatabaseError("disk full")

    monkeypatch.setattr(Chunk.objects, "bulk_create", broken_bulk_create)
    with pytest.raises(DatabaseError):
        document_index(document_id=doc.pk)

    # The delete of the old chunks rolled back with the failed insert: the old version still serves.
    assert list(Chunk.objects.filter(document=first).values_list("id", "text")) == before
    assert Document.objects.get(pk=doc.pk).status == "pending"


def test_indexing_twice_is_idempotent(kb):
    doc, _ = document_upsert(kb=kb, external_id="refunds", filename="refunds.md", data=ARTICLE)
    document_index(document_id=doc.pk)
    ids = list(Chunk.objects.filter(document=doc).values_list("id", flat=True))

    again = document_index(document_id=doc.pk)

    assert again.status == "ready"
    assert list(Chunk.objects.filter(document=doc).values_list("id", flat=True)) == ids


def test_a_document_that_turns_bad_fails_and_stops_serving_its_old_chunks(kb):
    ingest(kb, ARTICLE)

    doc, needs = ingest(kb, b"\xff\xfe broken")

    assert needs is True
    assert doc.status == "failed"
    assert doc.status_reason.startswith("refunds.md is not UTF-8 text")
    assert Chunk.objects.filter(knowledge_base=kb).count() == 0
