"""Services of the knowledge base: create knowledge bases, upsert documents, index them (parse,
chunk, embed, replace chunks atomically), re-embed. Selectors live in selectors.py."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable

import numpy as np
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from .chunking import ChunkDraft, chunk_document, chunking_signature
from .embeddings import Embedder, embedder_for_kb, get_embedder
from .errors import EmbeddingError, UnsupportedDocument
from .languages import DEFAULT_LANGUAGE, embedding_model_for, is_chinese, language_normalise
from .models import Chunk, Document, DocumentStatus, KnowledgeBase
from .parsers import parse, parser_for
from .selectors import vector_column_dimensions

log = logging.getLogger(__name__)
EMBED_BATCH = 64  # chunks per embedding call, and per progress update


def knowledge_base_get_or_create(
    *, slug: str, name: str = "", language: str = DEFAULT_LANGUAGE
) -> KnowledgeBase:
    """A new knowledge base records its language and the embedding model configured for that
    language (languages.py): its chunks will be in that space. An existing one keeps both."""
    language = language_normalise(language)
    provider, model = embedding_model_for(language)
    kb, _ = KnowledgeBase.objects.get_or_create(
        slug=slug,
        defaults={
            "name": name or slug.replace("-", " ").title(),
            "language": language,
            "embedding_provider": provider,
            "embedding_model": model,
            "embedding_dimensions": settings.EMBEDDING_DIMENSIONS,
        },
    )
    return kb


def search_text_for(*, language: str, title: str, heading_path: str, text: str) -> str:
    """What a chunk's `search_text` holds: "" for English (its tsvector is made from its columns),
    the jieba-segmented title, headings and text for Chinese."""
    if not is_chinese(language):
        return ""
    from .segmentation import segment

    return segment(f"{title}\n{heading_path}\n{text}")


def _mib(n: int) -> str:
    return f"{n / 1024 / 1024:.1f} MiB"


def oversize_reason(*, filename: str, size: int) -> str:
    if size <= settings.KB_MAX_FILE_BYTES:
        return ""
    return (
        f"{filename} is {_mib(size)}, over the {_mib(settings.KB_MAX_FILE_BYTES)} limit "
        "(KB_MAX_FILE_BYTES). Split it into smaller files, or raise KB_MAX_FILE_BYTES."
    )


def _validation_failure(*, filename: str, data: bytes) -> str:
    """Why these bytes cannot become a document without parsing them, or ''."""
    try:
        parser_for(filename)
    except UnsupportedDocument as exc:
        return str(exc)
    if too_big := oversize_reason(filename=filename, size=len(data)):
        return too_big
    if not data.strip():
        return f"{filename} is empty. Add content to it and ingest it again."
    return ""


@transaction.atomic
def document_upsert(
    *, kb: KnowledgeBase, external_id: str, filename: str, data: bytes, title: str = "", source_url: str = ""
) -> tuple[Document, bool]:
    """Store a document's bytes; return (document, needs_indexing). Unchanged bytes, title and
    chunking of a ready document need nothing: re-ingesting them does no work."""
    doc, _ = Document.objects.select_for_update().get_or_create(
        knowledge_base=kb, external_id=external_id, defaults={"filename": filename}
    )
    doc.source_url = source_url
    doc.filename = filename
    failure = _validation_failure(filename=filename, data=data)
    if failure:
        _fail(doc, failure)
        return doc, False
    content_hash = hashlib.sha256(title.encode() + b"\x00" + data).hexdigest()
    if doc.status == DocumentStatus.READY and doc.indexed_signature == _signature(content_hash):
        doc.save(update_fields=["source_url", "filename", "updated_at"])
        return doc, False
    doc.title = title
    doc.source = data
    doc.content_hash = content_hash
    doc.status = DocumentStatus.PENDING
    doc.status_reason = ""
    doc.chunks_total = doc.chunks_done = 0
    doc.save()
    return doc, True


def document_reject(*, kb: KnowledgeBase, external_id: str, filename: str, reason: str) -> Document:
    """Record a document that cannot be ingested (e.g. too big to read) as failed, with why."""
    doc, _ = Document.objects.get_or_create(knowledge_base=kb, external_id=external_id)
    doc.filename = filename
    _fail(doc, reason)
    return doc


def _signature(content_hash: str) -> str:
    return f"{content_hash}:{chunking_signature()}"


def _fail(doc: Document, reason: str) -> None:
    # A failed document serves nothing: a stale version would answer with what its owner replaced.
    with transaction.atomic():
        Chunk.objects.filter(document=doc).delete()
        doc.status = DocumentStatus.FAILED
        doc.status_reason = reason
        doc.source = None
        doc.indexed_signature = ""
        doc.chunks_total = doc.chunks_done = 0
        doc.save()


def document_mark_failed(*, document_id: str, reason: str) -> None:
    doc = Document.objects.filter(pk=document_id).first()
    if doc is not None:
        _fail(doc, reason)


def document_index(*, document_id: str, embedder: Embedder | None = None) -> Document:
    """Parse, chunk and embed a pending document, then swap its chunks in one transaction, so a
    search sees the old version or the new one, never a mix. Idempotent: a document already
    indexed at its current content is returned as is. Raises EmbeddingError (transient: retry)."""
    doc = Document.objects.select_related("knowledge_base").get(pk=document_id)
    if doc.status == DocumentStatus.FAILED or doc.indexed_signature == _signature(doc.content_hash):
        return doc
    embedder = embedder or embedder_for_kb(doc.knowledge_base)
    content_hash = doc.content_hash
    try:
        parsed = parse(bytes(doc.source or b""), filename=doc.filename or doc.external_id)
        if parsed.is_empty:
            raise UnsupportedDocument(
                f"{doc.filename or doc.external_id} has no text to index. "
                "Add content to it and ingest it again."
            )
    except UnsupportedDocument as exc:
        _fail(doc, str(exc))
        return doc
    title = doc.title or parsed.title
    drafts = chunk_document(parsed)
    Document.objects.filter(pk=doc.pk).update(chunks_total=len(drafts), chunks_done=0)
    vectors = embed_drafts(
        drafts,
        title=title,
        embedder=embedder,
        progress=lambda done: Document.objects.filter(pk=doc.pk).update(chunks_done=done),
    )
    return _replace_chunks(
        doc_id=doc.pk, content_hash=content_hash, title=title, drafts=drafts, vectors=vectors
    )


def embed_drafts(
    drafts: list[ChunkDraft],
    *,
    title: str,
    embedder: Embedder,
    progress: Callable[[int], object] | None = None,
) -> np.ndarray:
    _check_dimensions(embedder)
    parts = []
    for start in range(0, len(drafts), EMBED_BATCH):
        batch = drafts[start : start + EMBED_BATCH]
        parts.append(embedder.embed([d.embedding_input(title) for d in batch]))
        if progress:
            progress(start + len(batch))
    return np.concatenate(parts) if parts else np.zeros((0, embedder.dimensions), dtype=np.float32)


def _check_dimensions(embedder: Embedder) -> None:
    column = vector_column_dimensions()
    if embedder.dimensions != column:
        raise EmbeddingError(
            f"The embedding model {embedder.model!r} gives {embedder.dimensions} dimensions but the "
            f"chunk table stores vector({column}). Set EMBEDDING_DIMENSIONS={embedder.dimensions} and "
            "recreate the knowledge tables (manage.py migrate knowledge zero; manage.py migrate), "
            "then ingest again."
        )


@transaction.atomic
def _replace_chunks(
    *, doc_id, content_hash: str, title: str, drafts: list[ChunkDraft], vectors: np.ndarray
) -> Document:
    doc = Document.objects.select_for_update().select_related("knowledge_base").get(pk=doc_id)
    if doc.content_hash != content_hash:
        # A newer version arrived while we embedded; its own indexing run will replace the chunks.
        return doc
    Chunk.objects.filter(document=doc).delete()
    Chunk.objects.bulk_create(
        Chunk(
            document=doc,
            knowledge_base=doc.knowledge_base,
            order=d.order,
            title=title,
            heading_path=d.heading_path,
            text=d.text,
            token_count=d.token_count,
            embedding=vector,
            search_text=search_text_for(language=doc.knowledge_base.language, title=title,
                                        heading_path=d.heading_path, text=d.text),
        )
        for d, vector in zip(drafts, vectors, strict=True)
    )
    doc.title = title
    doc.status = DocumentStatus.READY
    doc.status_reason = ""
    doc.indexed_signature = _signature(content_hash)
    doc.indexed_at = timezone.now()
    doc.chunks_total = doc.chunks_done = len(drafts)
    doc.save()
    return doc


def knowledge_base_reembed(*, kb: KnowledgeBase, batch: int = 256) -> int:
    """Re-embed every chunk of `kb` with the model configured for its language, then switch the
    knowledge base to it in one transaction. The only way to change a knowledge base's embedding model."""
    embedder = get_embedder(*embedding_model_for(kb.language))
    _check_dimensions(embedder)
    chunks = list(Chunk.objects.filter(knowledge_base=kb).only("id", "title", "heading_path", "text"))
    vectors: list[np.ndarray] = []
    for start in range(0, len(chunks), batch):
        part = chunks[start : start + batch]
        inputs = [
            ChunkDraft(order=0, heading_path=c.heading_path, text=c.text, token_count=0).embedding_input(
                c.title
            )
            for c in part
        ]
        vectors.extend(embedder.embed(inputs))
    with transaction.atomic():
        for chunk, vector in zip(chunks, vectors, strict=True):
            chunk.embedding = vector
        Chunk.objects.bulk_update(chunks, ["embedding"], batch_size=500)
        kb.embedding_provider = embedder.provider
        kb.embedding_model = embedder.model
        kb.embedding_dimensions = embedder.dimensions
        kb.save()
    return len(chunks)
