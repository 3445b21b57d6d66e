"""Celery tasks of the knowledge base: they take ids, call a service, and are safe to retry."""

from __future__ import annotations

from celery import shared_task

from .errors import EmbeddingError
from .services import document_index, document_mark_failed


@shared_task(bind=True, acks_late=True, max_retries=4, soft_time_limit=1800, time_limit=1900)
def document_index_task(self, document_id: str) -> str:
    """Index one document. Idempotent: a document already indexed at its content is left alone.
    An unreachable embeddings endpoint is retried with backoff, then fails the document."""
    try:
        return document_index(document_id=document_id).status
    except EmbeddingError as exc:
        if self.request.retries < self.max_retries:
            raise self.retry(exc=exc, countdown=min(2**self.request.retries * 5, 120)) from exc
        document_mark_failed(document_id=document_id, reason=str(exc))
        return "failed"
