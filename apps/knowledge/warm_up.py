"""A new web process loads what its first questions need before they come (config/asgi.py):
the embedding model, and for each knowledge base what reading a question's words needs (its
spelling vocabulary, wordfreq's word lists, jieba for Chinese) and its label vectors
(retrieval.labels_warm_up). Without it the first customers of a process wait seconds: measured
here, a fresh process's first three questions took 3.3, 2.1 and 1.1 s to ground, the next
ones under 10 ms. In a background thread: the process serves meanwhile."""

from __future__ import annotations

import logging
import threading
import time

from django.db import connection

from apps.core.memory import heap_freeze

from .embeddings import configured_embedder
from .models import KnowledgeBase
from .retrieval import labels_warm_up

logger = logging.getLogger(__name__)

# Label vectors warmed per process, in all knowledge bases (newest first), of the cache's 8,192:
# the demo help center needs 1,076 (14 s here); the rest is left for what questions bring.
WARM_LABELS = 2048


def knowledge_warm_up() -> None:
    """Load the model, then each knowledge base's labels; logs and swallows every failure (the
    first search reports the same problem to its caller)."""
    began = time.monotonic()
    try:
        configured_embedder().embed(["warm up"])
    except Exception:
        logger.exception("loading the embedding model failed")
        return
    try:
        left = WARM_LABELS
        for slug in KnowledgeBase.objects.order_by("-pk").values_list("slug", flat=True):
            if left <= 0:
                break
            started = time.monotonic()
            added = labels_warm_up(kb_slug=slug, limit=left)
            left -= added
            took = time.monotonic() - started
            logger.info("warmed up knowledge base %s: %d label vectors in %.1f s", slug, added, took)
    except Exception:  # no database yet (a release's first start before migrate), say
        logger.warning("warming up the knowledge bases failed", exc_info=True)
    finally:
        connection.close()
        heap_freeze(collect=False)  # the model and the vocabularies loaded above
        logger.info("knowledge warm-up finished in %.1f s", time.monotonic() - began)


def knowledge_warm_up_start() -> threading.Thread:
    thread = threading.Thread(target=knowledge_warm_up, name="knowledge-warm-up", daemon=True)
    thread.start()
    return thread
