"""Ingesting files: collect paths, upsert each as a document, then index the changed ones either
in this process or through Celery tasks. Shared by kb_ingest, the admin upload and demo.py."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from pathlib import Path

from django.db import transaction

from .errors import EmbeddingError, EmbeddingMismatch
from .models import Document, KnowledgeBase
from .services import document_index, document_mark_failed, document_reject, document_upsert, oversize_reason

log = logging.getLogger(__name__)


def paths_collect(paths: Iterable[str | Path]) -> list[Path]:
    """Files named and files under folders named (hidden ones skipped), in a stable order.
    Unsupported types are kept: they become `failed` documents that say why."""
    files: list[Path] = []
    for raw in paths:
        path = Path(raw).expanduser().resolve()
        if path.is_dir():
            files.extend(
                p
                for p in sorted(path.rglob("*"))
                if p.is_file() and not any(part.startswith(".") for part in p.relative_to(path).parts)
            )
        elif path.is_file():
            files.append(path)
        else:
            raise FileNotFoundError(f"{raw}: no such file or folder.")
    return list(dict.fromkeys(files))


def file_upsert(*, kb: KnowledgeBase, path: Path) -> tuple[Document, bool]:
    """Upsert one file; a file over the size limit is rejected without reading it."""
    external_id = str(path)
    if reason := oversize_reason(filename=path.name, size=path.stat().st_size):
        return document_reject(kb=kb, external_id=external_id, filename=path.name, reason=reason), False
    return document_upsert(kb=kb, external_id=external_id, filename=path.name, data=path.read_bytes())


def documents_index_inline(
    documents: list[Document], *, on_done: Callable[[Document], object] | None = None
) -> list[Document]:
    """Index in this process, one document after another; a failure fails that document only.
    A model mismatch is the operator's to fix and stops the run."""
    results = []
    for doc in documents:
        try:
            doc = document_index(document_id=doc.pk)
        except EmbeddingMismatch:
            raise
        except EmbeddingError as exc:
            document_mark_failed(document_id=doc.pk, reason=str(exc))
            doc.refresh_from_db()
        results.append(doc)
        if on_done:
            on_done(doc)
    return results


def documents_enqueue(documents: list[Document]) -> None:
    from .tasks import document_index_task

    for doc in documents:
        transaction.on_commit(lambda pk=str(doc.pk): document_index_task.delay(pk))


def worker_consumes_queue(timeout: float = 1.0) -> bool:
    """Whether a Celery worker answers and consumes our default queue (a worker of another
    queue, e.g. another test run's, would leave our tasks waiting forever)."""
    from django.conf import settings

    from config.celery import app

    try:
        replies = app.control.inspect(timeout=timeout).active_queues() or {}
    except Exception as exc:  # broker down: there is no worker to hand work to
        log.info("no Celery worker: %s", exc)
        return False
    wanted = settings.CELERY_TASK_DEFAULT_QUEUE
    return any(q.get("name") == wanted for queues in replies.values() for q in queues or [])
