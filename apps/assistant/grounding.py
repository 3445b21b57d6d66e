"""The one retrieval entry point both providers call: what the knowledge base says about a
question, and whether to answer from it, ask which topic the customer means, or hand over.

- `answer`: one article answers the question with confidence; cite it.
- `clarify`: plausible but unsure, or two articles fit; ask, offering up to three topics
  (`suggestions`, PROTOCOL.md §2) the customer can tap.
- `handover`: nothing relevant; decline and offer a person.

The decision and its calibration are apps/assistant/relevance.py's: a weighted mean of the
question's cosines to each article's best chunk, best sentence, headings and title, plus a small
lexical bonus, ranked by article, less a penalty for the share of the question in uncommon words
the help center never uses (`novelty`); answer when one article stands out (never on a near
tie), clarify when plausible but unsure or two fit alike, hand over below a floor. Chosen on the
tune half of apps/assistant/evalsets/ (customers' own words), builtin provider, ONNX embedder,
tune / report half: in-scope right article 0.892 / 0.848, wrong article 0.000 / 0.051,
clarified 0.075 / 0.061; off-topic declined 0.964 / 0.919 (an article holding the question's
closest sentence close behind the first is a question back: relevance.py's rival rule).
An article's "Customers also ask" section (retrieval.py) finds it but never speaks for it.
`passages` come best ARTICLE first (that ranking, not retrieval's fused order), one per article,
with `title_similarity`, `heading_similarity` and `sentence_similarity` filled in. A question
that is an article's title (a tapped suggestion sends its title) answers from that article
(`picked`).

Languages (issue 21): `ground(..., language=...)` searches the help center written in the
customer's language (KnowledgeBase.language; the demo's `help-center` and `help-center-zh`), and
the default one when there is none: `Grounding.language_fallback` is then True, so the provider
can say it answers from the default-language help center. A Chinese help center is judged with
the Chinese calibration (relevance.py `GATES`).

Runs in a worker thread (embedding is CPU work; search takes its own DB connection); from the
event loop, `aground` does that, and identical questions asked at the same moment share one run.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import close_old_connections, connection

from apps.core.runtime import runtime
from apps.core.single_flight import SingleFlight

from .relevance import MAX_SUGGESTIONS, Relevance, gate_for, rank_articles, relevance_judge

logger = logging.getLogger(__name__)

Decision = Literal["answer", "clarify", "handover"]
# Articles looked at per question: enough to see the runner-up articles a clarify offers.
SEARCH_K = 8

__all__ = ["MAX_SUGGESTIONS", "SEARCH_K", "Decision", "Grounding", "ground", "grounding_from",
           "aground", "knowledge_base_for_language", "knowledge_search"]


@dataclass(frozen=True)
class Grounding:
    decision: Decision
    passages: list[Any] = field(default_factory=list)  # apps.knowledge.retrieval.Passage, best first
    relevance: Relevance | None = None
    suggestions: list[dict[str, Any]] = field(default_factory=list)  # [{"title", "document_id"}]
    # The question is the first article's title: a tapped suggestion (or typed as one).
    picked: bool = False
    # The help center searched, and its language ("en", "zh-hans").
    kb_slug: str = ""
    language: str = "en"
    # No help center in the customer's language: the default one was searched instead.
    language_fallback: bool = False


def knowledge_base_for_language(language: str) -> tuple[str, str, bool]:
    """(slug, its language, fell back) of the help center to answer a customer of `language`
    from: the default (KB_DEFAULT_SLUG) if it is in that language, else `<default>-<primary
    subtag>` (help-center-zh) or `<default>-<language>` in that language, else the default one,
    falling back."""
    from apps.knowledge.languages import language_normalise
    from apps.knowledge.models import KnowledgeBase

    wanted = language_normalise(language)
    default = settings.KB_DEFAULT_SLUG
    preferred = [default, f"{default}-{wanted.split('-')[0]}", f"{default}-{wanted}"]
    # One plain statement: the candidates' languages, the default's among them (every answer
    # asks this; through the ORM it cost six times the CPU).
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT slug, language FROM {KnowledgeBase._meta.db_table} WHERE slug = ANY(%s)",
                       [preferred])
        languages = dict(cursor.fetchall())
    for slug in preferred:
        if languages.get(slug) == wanted:
            return slug, wanted, False
    return default, languages.get(default) or "en", True


def knowledge_search(question: str, *, kb_slug: str | None = None, k: int = SEARCH_K) -> list[Any]:
    """The best passages (one per article, retrieval's order, with title similarity) of a
    knowledge base (the default one) for a question; [] when there is none or it cannot be
    searched (no knowledge base yet, or it needs re-embedding)."""
    from apps.knowledge.errors import SearchError
    from apps.knowledge.retrieval import search

    close_old_connections()
    try:
        return search(kb_slug=kb_slug or settings.KB_DEFAULT_SLUG, query=question[:2000], k=k, titles=True)
    except SearchError as exc:
        logger.warning("knowledge search unavailable: %s", exc)
        return []
    finally:
        close_old_connections()


def ground(question: str, *, kb_slug: str | None = None, language: str = "en") -> Grounding:
    """Search the knowledge base (`kb_slug`, else the help center in `language`, else the default
    one) for `question` and decide answer / clarify / handover."""
    fell_back = False
    if kb_slug is None:
        close_old_connections()
        kb_slug, kb_language, fell_back = knowledge_base_for_language(language)
    else:
        kb_language = _language_of(kb_slug)
    passages = knowledge_search(question, kb_slug=kb_slug)
    grounding = grounding_from(passages, question=question, language=kb_language)
    return replace(grounding, kb_slug=kb_slug, language_fallback=fell_back)


async def aground(question: str, *, language: str = "en") -> Grounding:
    """`ground` in a worker thread, from the event loop. Customers asking the same question in
    the same language at the same moment (a burst about one outage) share one search and
    decision: each gets its own copy of the result."""
    flights = runtime().loop_get("grounding.flights", SingleFlight)
    shared = await flights.run(
        (question, language),
        lambda: sync_to_async(ground, thread_sensitive=False)(question, language=language),
    )
    return replace(shared, passages=list(shared.passages), suggestions=[dict(s) for s in shared.suggestions])


def _language_of(kb_slug: str) -> str:
    from apps.knowledge.models import KnowledgeBase

    close_old_connections()
    return KnowledgeBase.objects.filter(slug=kb_slug).values_list("language", flat=True).first() or "en"


def grounding_from(passages: list[Any], *, question: str = "", language: str = "en") -> Grounding:
    """The decision on retrieval passages (as `knowledge_search` returns them) for `question`,
    judged with the calibration of the knowledge base's `language`."""
    gate = gate_for(language)
    passages = rank_articles(passages, gate=gate)
    relevance = relevance_judge(passages=passages, gate=gate)
    titled = _titled(question, passages)
    if titled is not None:
        # A tapped suggestion sends its title as the message (PROTOCOL.md §2): that article is
        # what the customer picked, whatever else resembles its title.
        passages = [titled, *(p for p in passages if p is not titled)]
        relevance = replace(relevance, decision="answer", relevant=True, candidates=())
    suggestions: list[dict[str, Any]] = []
    if relevance.decision == "clarify":
        seen: set[str] = set()
        for i in relevance.candidates:
            p = passages[i]
            if p.document_id not in seen and p.title:
                seen.add(p.document_id)
                suggestions.append({"title": p.title, "document_id": p.document_id})
    return Grounding(decision=relevance.decision, passages=passages, relevance=relevance,
                     suggestions=suggestions[:MAX_SUGGESTIONS], picked=titled is not None,
                     language=language)


def _titled(question: str, passages: list[Any]) -> Any | None:
    """The passage whose article's title is the whole question (case and punctuation aside)."""
    def key(text: str) -> str:
        return " ".join(re.findall(r"\w+", text.casefold()))

    wanted = key(question)
    return next((p for p in passages if wanted and key(p.title or "") == wanted), None)
