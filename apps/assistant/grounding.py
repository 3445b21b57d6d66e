"""The one retrieval entry point both providers call: what the knowledge base says about a
question, and whether to answer from it, ask which topic the customer means, or hand over.

- `answer`: one article answers the question with confidence; cite it.
- `clarify`: plausible but unsure, or two articles fit; ask, offering up to three topics
  (`suggestions`, PROTOCOL.md §2) the customer can tap.
- `handover`: nothing relevant; decline and offer a person.

Runs in a worker thread (embedding is CPU work; search takes its own DB connection).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Literal

from django.conf import settings
from django.db import close_old_connections

from .relevance import Relevance, relevance_judge

logger = logging.getLogger(__name__)

Decision = Literal["answer", "clarify", "handover"]
MAX_SUGGESTIONS = 3


@dataclass(frozen=True)
class Grounding:
    decision: Decision
    passages: list[Any] = field(default_factory=list)  # apps.knowledge.retrieval.Passage, best first
    relevance: Relevance | None = None
    suggestions: list[dict[str, Any]] = field(default_factory=list)  # [{"title", "document_id"}]


def knowledge_search(question: str, *, kb_slug: str | None = None, k: int = 5) -> list[Any]:
    """The best passages of a knowledge base (the default one) for a question; [] when there is
    none or it cannot be searched (no knowledge base yet, or it needs re-embedding)."""
    from apps.knowledge.errors import SearchError
    from apps.knowledge.retrieval import search

    close_old_connections()
    try:
        return search(kb_slug=kb_slug or settings.KB_DEFAULT_SLUG, query=question[:2000], k=k)
    except SearchError as exc:
        logger.warning("knowledge search unavailable: %s", exc)
        return []
    finally:
        close_old_connections()


def ground(question: str, *, kb_slug: str | None = None) -> Grounding:
    """Search the knowledge base for `question` and decide answer / clarify / handover."""
    passages = knowledge_search(question, kb_slug=kb_slug)
    relevance = relevance_judge(passages=passages)
    if not relevance.relevant:
        return Grounding(decision="handover", passages=passages, relevance=relevance)
    return Grounding(decision="answer", passages=passages, relevance=relevance)
