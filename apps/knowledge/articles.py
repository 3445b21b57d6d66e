"""Help-center articles written by staff (the console's knowledge gaps): stored and indexed at once,
in the caller's request, so the very next question can be answered from them."""

from __future__ import annotations

import logging
import uuid

from django.utils.text import slugify

from .errors import UnsupportedDocument
from .models import Document, DocumentStatus
from .services import document_index, document_upsert, knowledge_base_get_or_create

log = logging.getLogger(__name__)
ARTICLE_PREFIX = "article:"


def article_publish(*, kb_slug: str, title: str, body: str, author: str = "") -> Document:
    """Store a Markdown article (`# title` + body) as a new document of `kb_slug` and index it
    synchronously. Raises EmbeddingError when it could not be embedded (nothing is served then),
    UnsupportedDocument when it has no text."""
    title, body = " ".join(title.split()), body.strip()
    kb = knowledge_base_get_or_create(slug=kb_slug)
    # A fresh external id per article: two gaps that happen to share a title never overwrite each other.
    name = slugify(title)[:80] or "article"
    doc, _ = document_upsert(
        kb=kb,
        external_id=f"{ARTICLE_PREFIX}{name}-{uuid.uuid4().hex[:12]}",
        filename=f"{name}.md",
        data=f"# {title}\n\n{body}\n".encode(),
        title=title,
    )
    doc = document_index(document_id=doc.pk)
    if doc.status != DocumentStatus.READY:
        # Embedding errors are raised by document_index; what is left here is an unusable text.
        raise UnsupportedDocument(doc.status_reason or f"{title!r} could not be indexed.")
    log.info("article %s (%s) published to %s by %s", doc.pk, title, kb_slug, author or "unknown")
    return doc
