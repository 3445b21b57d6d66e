"""The `builtin` provider: no model, no network. Answers with sentences of the best knowledge
base passages, cited as [n]; says plainly when it does not know and offers a person."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator, Sequence
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import close_old_connections

from apps.knowledge.sentences import sentence_split

from .base import AnswerChunk, Turn

logger = logging.getLogger(__name__)

DONT_KNOW = "I don't know that one, sorry. Would you like to talk to a person?"
MAX_PASSAGES = 3
SENTENCES_PER_PASSAGE = 2
_WORD = re.compile(r"\w{3,}")
_STOP = frozenset(
    "the and for you your are can how what when where which who why does did with this that have has "
    "from not but our out about into there their they them will would could should please"
    " hello thanks".split()
)


def _terms(text: str) -> set[str]:
    return {w[:5] for w in _WORD.findall(text.lower()) if w not in _STOP}


def compose(question: str, passages: Sequence[Any]) -> tuple[str, list[dict[str, Any]]]:
    """The answer text and its citations from retrieval passages (with `text` and `.citation(n)`).
    Only passages sharing a word with the question count as knowing."""
    wanted = _terms(question)
    parts: list[str] = []
    citations: list[dict[str, Any]] = []
    for passage in passages:
        if len(citations) == MAX_PASSAGES:
            break
        sentences = [s for s in sentence_split(passage.text) if len(s) > 2]
        scored = sorted(range(len(sentences)), key=lambda i: (-len(_terms(sentences[i]) & wanted), i))
        picked = sorted(i for i in scored[:SENTENCES_PER_PASSAGE] if _terms(sentences[i]) & wanted)
        if not picked:
            continue
        n = len(citations) + 1
        citations.append(passage.citation(n))
        parts.append(" ".join(sentences[i] for i in picked) + f" [{n}]")
    if not parts:
        return DONT_KNOW, []
    return " ".join(parts), citations


def knowledge_search(question: str) -> list[Any]:
    """The best passages of the default knowledge base for a question ([] when there is none)."""
    from apps.knowledge.errors import SearchError
    from apps.knowledge.retrieval import search

    # Runs in a worker thread (embedding is CPU work): take and give back its own connection.
    close_old_connections()
    try:
        return search(kb_slug=settings.KB_DEFAULT_SLUG, query=question[:2000], k=5)
    except SearchError as exc:  # no knowledge base yet, or it needs re-embedding: answer "don't know"
        logger.warning("knowledge search unavailable: %s", exc)
        return []
    finally:
        close_old_connections()


class BuiltinProvider:
    name = "builtin"

    async def answer(self, turn: Turn) -> AsyncIterator[AnswerChunk]:
        from .builtin_tools import tool_answer, wants_tool

        if wants_tool(turn):  # an order number, a refund, a ticket...: the systems answer, not the KB
            async for chunk in tool_answer(turn):
                yield chunk
            return
        passages = await sync_to_async(knowledge_search, thread_sensitive=False)(turn.question)
        text, citations = compose(turn.question, passages)
        yield AnswerChunk(citations=citations)
        delay = settings.ASSISTANT_TOKEN_DELAY_S
        words = re.findall(r"\S+\s*", text)
        for i, word in enumerate(words):
            yield AnswerChunk(text=word)
            if delay and i < len(words) - 1:
                await asyncio.sleep(delay)
