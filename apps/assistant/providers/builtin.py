"""The `builtin` provider: no model, no network. Asks apps/assistant/grounding.py once per question:
`answer` -> sentences of the best article, cited as [n] (outcome "answered"); `clarify` -> asks
which topic is meant, with up to three suggested articles (outcome "clarify"); `handover` -> says
plainly it does not know and offers a person (outcome "declined")."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator, Sequence
from functools import lru_cache
from typing import Any

import numpy as np
from asgiref.sync import sync_to_async
from django.conf import settings

from apps.knowledge.embeddings import Embedder, embed_query
from apps.knowledge.sentences import sentence_split

from ..grounding import aground
from ..phrases import CLARIFY, DONT_KNOW, phrase  # noqa: F401 (CLARIFY, DONT_KNOW: re-exported)
from .base import AnswerChunk, Turn

logger = logging.getLogger(__name__)

# The answer quotes at most this many sentences of one passage: those whose similarity to the
# question is within SENTENCE_BAND of the best one (and above SENTENCE_FLOOR), in article order.
MAX_SENTENCES = 3
SENTENCE_BAND = 0.12
SENTENCE_FLOOR = 0.25
# A second part of the question ("...? And do you ...?") may cite a second article when its best
# sentence there is this similar to that part and clearly better than what the first article has.
SECOND_TOPIC_FLOOR = 0.5
_QUESTION_END = re.compile(r"(?<=\?)\s+")
_CJK = re.compile(r"[\u3400-\u9fff]")


def _quotable(text: str) -> list[str]:
    """The sentences of a passage that can stand in an answer. Headings are dropped; list items
    join the sentence that introduces them, so "bedding, pillows and duvets" is never quoted
    without "These items cannot be returned unless they are faulty:"."""
    units: list[str] = []
    for sentence in sentence_split(text):
        if sentence.startswith("#"):
            continue
        item = re.match(r"^(?:[-*+]|\d+[.)])\s+(.*)", sentence)
        if item and units and (units[-1].endswith(":") or units[-1][-1] in ",;"):
            units[-1] = f"{units[-1]} {item.group(1)}"
        elif len(re.findall(r"\w+", sentence)) >= 3 or len(_CJK.findall(sentence)) >= 6:
            # Chinese writes no spaces: six characters make a sentence (as retrieval's _sentences).
            units.append(item.group(1) if item else sentence)
    return [u.rstrip(",;") + ("." if u[-1] in ",;" else "") for u in units]


def _embedder(language: str = "") -> Embedder:
    """The model the help center of `language` (the knowledge base's) is embedded with: a Chinese
    help center's sentences are compared with the question by its own model, not the English one."""
    from apps.knowledge.embeddings import configured_embedder, get_embedder
    from apps.knowledge.languages import embedding_model_for, is_chinese

    return get_embedder(*embedding_model_for(language)) if is_chinese(language) else configured_embedder()


@lru_cache(maxsize=2048)
def _cached_sentence_vectors(provider: str, model: str, sentences: tuple[str, ...]) -> np.ndarray:
    return _embedder_by_name(provider, model).embed(list(sentences))


def _embedder_by_name(provider: str, model: str) -> Embedder:
    from apps.knowledge.embeddings import get_embedder

    return get_embedder(provider, model)


def _sentence_vectors(embedder: Embedder, sentences: tuple[str, ...]) -> np.ndarray:
    if getattr(embedder, "provider", None) and getattr(embedder, "model", None):
        return _cached_sentence_vectors(embedder.provider, embedder.model, sentences)
    return embedder.embed(list(sentences))


def _pick(scores: np.ndarray, floor: float = SENTENCE_FLOOR) -> list[int]:
    best = float(scores.max())
    if best < floor:
        return []
    ranked = [i for i in np.argsort(-scores) if scores[i] >= max(best - SENTENCE_BAND, floor)]
    return sorted(int(i) for i in ranked[:MAX_SENTENCES])


def compose(
    question: str, passages: Sequence[Any], *, embedder: Embedder | None = None, picked: bool = False,
    language: str = "",
) -> tuple[str, list[dict[str, Any]]]:
    """The answer text and its citations from retrieval passages (best article first, with `text`
    and `.citation(n)`), for a question `ground()` decided to answer.

    Quotes the sentences of the best passage closest in meaning to the question, in article order,
    cited [1] with the quoted text as the citation's snippet; a second question in the same message
    may add a second article, cited [2]. Nothing quotable (no passage, or no sentence similar
    enough) is a decline: DONT_KNOW, no citations. `picked`: the customer chose the first article
    by its title (a tapped suggestion): its closest sentences are quoted however far they are."""
    dont_know = phrase("dont_know", language)  # in the customer's language
    if not passages:
        return dont_know, []
    embedder = embedder or _embedder()
    parts = [p for p in _QUESTION_END.split(question.strip()) if p.strip()]
    asks = parts[:2] if len(parts) > 1 else [question]
    # Only a second question may reach past the best passage: embed the others only then.
    sentences = [_quotable(p.text) if j == 0 or len(asks) > 1 else [] for j, p in enumerate(passages)]
    flat = [s for group in sentences for s in group]
    if not flat:
        return dont_know, []
    # Question parts through the query cache; a passage's sentences through their own cache (the
    # same articles answer most questions), each passage's misses in one batch.
    ask_vectors = np.stack([embed_query(embedder, a) for a in asks])
    sentence_vectors = np.concatenate([_sentence_vectors(embedder, tuple(g)) for g in sentences if g])
    bounds = np.cumsum([0] + [len(g) for g in sentences])
    picks: list[tuple[int, list[int]]] = []
    floor = -1.0 if picked else SENTENCE_FLOOR
    first = _pick(sentence_vectors[bounds[0] : bounds[1]] @ ask_vectors[0], floor) if sentences[0] else []
    if not first:
        return dont_know, []
    picks.append((0, first))
    if len(asks) > 1:
        own = float((sentence_vectors[bounds[0] : bounds[1]] @ ask_vectors[1]).max())
        for j in range(1, len(passages)):
            if not sentences[j]:
                continue
            scores = sentence_vectors[bounds[j] : bounds[j + 1]] @ ask_vectors[1]
            if float(scores.max()) >= max(SECOND_TOPIC_FLOOR, own + SENTENCE_BAND):
                picks.append((j, _pick(scores)))
                break
    texts: list[str] = []
    citations: list[dict[str, Any]] = []
    for n, (j, chosen) in enumerate(picks, start=1):
        quoted = " ".join(sentences[j][i] for i in chosen)
        texts.append(f"{quoted} [{n}]")
        citations.append({**passages[j].citation(n), "snippet": quoted})
    return " ".join(texts), citations


class BuiltinProvider:
    name = "builtin"

    async def answer(self, turn: Turn) -> AsyncIterator[AnswerChunk]:
        from .builtin_tools import tool_answer, wants_tool

        if wants_tool(turn):  # an order number, a refund, a ticket...: the systems answer, not the KB
            async for chunk in tool_answer(turn):
                yield chunk
            return
        grounding = await aground(turn.question, language=turn.language or settings.LANGUAGE_CODE)
        if grounding.decision == "clarify" and grounding.suggestions:
            yield AnswerChunk(citations=[], suggestions=grounding.suggestions, outcome="clarify")
            text = phrase("clarify", turn.language)
        else:
            text, citations = phrase("dont_know", turn.language), []
            if grounding.decision == "answer":
                text, citations = await sync_to_async(compose, thread_sensitive=False)(
                    turn.question, grounding.passages, picked=grounding.picked, language=turn.language,
                    embedder=_embedder(grounding.language),
                )
            if citations and grounding.language_fallback:  # no help center in the customer's language
                text = f"{phrase('kb_fallback', turn.language, fallback=grounding.language)} {text}"
            yield AnswerChunk(citations=citations, outcome="answered" if citations else "declined")
        delay = settings.ASSISTANT_TOKEN_DELAY_S
        words = re.findall(r"\S+\s*", text)
        for i, word in enumerate(words):
            yield AnswerChunk(text=word)
            if delay and i < len(words) - 1:
                await asyncio.sleep(delay)
