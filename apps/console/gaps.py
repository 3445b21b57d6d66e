"""Knowledge gaps: customer questions the help center did not answer, grouped by meaning, and the
articles agents publish from them.

A question is the customer message an assistant answer replied to (the last customer message
before it), when that answer was declined, asked to clarify and the customer picked none of its
suggestions, was marked unhelpful, or when the conversation was handed to a person (a `handoff`
event to `waiting` or `human`). Questions a published article resolved (GapResolved) leave the
view. The work is bounded: the last CONSOLE_GAPS_DAYS days, the newest CONSOLE_GAPS_MAX_QUESTIONS.
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

import numpy as np
from django.conf import settings
from django.db import transaction
from django.db.models import Count, Q
from django.utils import timezone

from apps.audit.services import audit_record
from apps.conversations.models import Conversation, ConversationEvent, Message, MessageRole
from apps.knowledge.articles import article_publish
from apps.knowledge.embeddings import configured_embedder
from apps.knowledge.retrieval import ALSO_ASK_HEADING

from .models import GapArticle, GapResolved
from .roles import LEADS, staff_role

REASONS = {
    "declined": "Declined",
    "clarify": "Clarified, no pick",
    "handover": "Handed over",
    "unhelpful": "Marked unhelpful",
}
MAX_REPLIES_PER_QUESTION = 5


@dataclass(frozen=True)
class GapReply:
    text: str
    author: str
    at: datetime


@dataclass
class GapQuestion:
    id: UUID
    conversation_id: UUID
    seq: int
    text: str
    asked_at: datetime
    customer: str = ""
    reasons: set[str] = field(default_factory=set)
    replies: list[GapReply] = field(default_factory=list)

    @property
    def reason_labels(self) -> list[str]:
        return [REASONS[r] for r in REASONS if r in self.reasons]


@dataclass
class Gap:
    """Questions of one meaning; the first is the one closest to the group's centre."""

    questions: list[GapQuestion]

    @property
    def key(self) -> UUID:
        return self.questions[0].id

    @property
    def title(self) -> str:
        return self.questions[0].text

    @property
    def latest(self) -> datetime:
        return max(q.asked_at for q in self.questions)

    @property
    def replies(self) -> list[GapReply]:
        seen: set[str] = set()
        replies = []
        for reply in sorted((r for q in self.questions for r in q.replies), key=lambda r: r.at):
            if reply.text.strip() not in seen:
                seen.add(reply.text.strip())
                replies.append(reply)
        return replies

    @property
    def reason_counts(self) -> list[tuple[str, int]]:
        return [
            (label, n) for r, label in REASONS.items() if (n := sum(r in q.reasons for q in self.questions))
        ]

    def question_ids(self) -> list[UUID]:
        return [q.id for q in self.questions]


@dataclass(frozen=True)
class GapReport:
    gaps: list[Gap]
    days: int
    limit: int
    since: datetime
    truncated: bool  # more questions than `limit` in the window: the oldest were left out

    @property
    def questions(self) -> int:
        return sum(len(g.questions) for g in self.gaps)

    def find(self, question_id: UUID) -> Gap | None:
        return next((g for g in self.gaps if question_id in g.question_ids()), None)


def _norm(text: str) -> str:
    return " ".join(text.casefold().split())


def _triggers(since: datetime, limit: int) -> tuple[list[tuple[UUID, int, str, list[dict]]], bool]:
    """(conversation id, seq, reason, suggestions) of every answer or handoff that left a
    question open, the newest first, at most `limit` of each kind; and whether one kind had more."""
    answers = list(
        Message.objects.filter(role=MessageRole.ASSISTANT, created_at__gte=since)
        .filter(Q(outcome__in=["declined", "clarify"]) | Q(feedback__helpful=False))
        .order_by("-created_at")
        .values_list("conversation_id", "seq", "outcome", "suggestions", "feedback__helpful")[:limit]
    )
    found = []
    for conversation_id, seq, outcome, suggestions, helpful in answers:
        if outcome in ("declined", "clarify"):
            found.append((conversation_id, seq, outcome, suggestions or []))
        if helpful is False:
            found.append((conversation_id, seq, "unhelpful", []))
    handoffs = list(
        ConversationEvent.objects.filter(
            type="handoff", payload__state__in=["waiting", "human"], created_at__gte=since
        )
        .order_by("-created_at")
        .values_list("conversation_id", "seq")[:limit]
    )
    found.extend((conversation_id, seq, "handover", []) for conversation_id, seq in handoffs)
    return found, limit in (len(answers), len(handoffs))


def _questions(since: datetime, limit: int) -> tuple[list[GapQuestion], bool]:
    triggers, more = _triggers(since, limit)
    conversation_ids = {t[0] for t in triggers}
    rows = (
        Message.objects.filter(
            conversation_id__in=conversation_ids, role__in=[MessageRole.CUSTOMER, MessageRole.AGENT]
        )
        .exclude(seq=None)
        .order_by("conversation_id", "seq")
        .values(
            "id",
            "conversation_id",
            "seq",
            "role",
            "text",
            "created_at",
            "author__first_name",
            "author__last_name",
            "author__username",
        )
    )
    by_conversation: dict[UUID, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        by_conversation[row["conversation_id"]].append(row)

    questions: dict[UUID, GapQuestion] = {}
    for conversation_id, seq, reason, suggestions in triggers:
        messages = by_conversation[conversation_id]
        customer = [m for m in messages if m["role"] == MessageRole.CUSTOMER]
        asked = [m for m in customer if m["seq"] < seq]
        if not asked:
            continue  # a handoff before the customer wrote anything
        if reason == "clarify":
            after = next((m for m in customer if m["seq"] > seq), None)
            if after is not None and _norm(after["text"]) in {_norm(s.get("title", "")) for s in suggestions}:
                continue  # the customer tapped a suggestion: the clarification worked
        row = asked[-1]
        question = questions.get(row["id"])
        if question is None:
            question = questions[row["id"]] = GapQuestion(
                id=row["id"],
                conversation_id=conversation_id,
                seq=row["seq"],
                text=row["text"],
                asked_at=row["created_at"],
            )
        question.reasons.add(reason)

    resolved = set(
        GapResolved.objects.filter(question_id__in=list(questions)).values_list("question_id", flat=True)
    )
    open_questions = sorted(
        (q for q in questions.values() if q.id not in resolved), key=lambda q: q.asked_at, reverse=True
    )
    kept = open_questions[:limit]
    _replies_attach(kept, by_conversation)
    _customers_attach(kept)
    return kept, more or len(open_questions) > limit


def _replies_attach(questions: list[GapQuestion], by_conversation: dict[UUID, list[dict[str, Any]]]) -> None:
    """Each question's agent replies: agent messages after it, up to the conversation's next gap
    question (whose replies are its own)."""
    starts: dict[UUID, list[int]] = defaultdict(list)
    for q in questions:
        starts[q.conversation_id].append(q.seq)
    for q in questions:
        later = [s for s in starts[q.conversation_id] if s > q.seq]
        end = min(later) if later else None
        for m in by_conversation[q.conversation_id]:
            if m["role"] == MessageRole.AGENT and m["seq"] > q.seq and (end is None or m["seq"] < end):
                name = f"{m['author__first_name']} {m['author__last_name']}".strip()
                q.replies.append(
                    GapReply(
                        text=m["text"], author=name or m["author__username"] or "Agent", at=m["created_at"]
                    )
                )
        del q.replies[MAX_REPLIES_PER_QUESTION:]


def _customers_attach(questions: list[GapQuestion]) -> None:
    names = {
        c["id"]: c["customer__name"] or c["customer__email"] or "Anonymous"
        for c in Conversation.objects.filter(pk__in={q.conversation_id for q in questions}).values(
            "id", "customer__name", "customer__email"
        )
    }
    for q in questions:
        q.customer = names.get(q.conversation_id, "Anonymous")


# Question vectors by text, per process: the same questions are grouped on every page load.
_VECTOR_CACHE_SIZE = 4096
_vectors_cache: OrderedDict[tuple[str, str, str], np.ndarray] = OrderedDict()
_vectors_lock = threading.Lock()


def _vectors(texts: Sequence[str]) -> np.ndarray:
    embedder = configured_embedder()
    keys = [(embedder.provider, embedder.model, t) for t in texts]
    with _vectors_lock:
        found = {k: _vectors_cache[k] for k in keys if k in _vectors_cache}
    missing = list(dict.fromkeys(k for k in keys if k not in found))
    if missing:
        found.update(zip(missing, embedder.embed([k[2] for k in missing]), strict=True))
        with _vectors_lock:
            _vectors_cache.update((k, found[k]) for k in missing)
            while len(_vectors_cache) > _VECTOR_CACHE_SIZE:
                _vectors_cache.popitem(last=False)
    return np.stack([found[k] for k in keys])


def clusters(vectors: np.ndarray, *, threshold: float) -> list[list[int]]:
    """Average-linkage agglomerative clustering of unit vectors: merge the two groups with the
    highest mean cosine similarity while it is at least `threshold`. Each group is returned with
    its most central member first; the largest group first. O(n^3) in numpy: fine for hundreds."""
    n = len(vectors)
    if n == 0:
        return []
    sim = (vectors @ vectors.T).astype(np.float64)
    link = sim.copy()
    np.fill_diagonal(link, -np.inf)
    members: dict[int, list[int]] = {i: [i] for i in range(n)}
    while len(members) > 1:
        flat = int(np.argmax(link))
        a, b = divmod(flat, n)
        if link[a, b] < threshold:
            break
        na, nb = len(members[a]), len(members[b])
        # Lance-Williams update for average linkage: the merged group's mean similarity to each other.
        link[a, :] = (na * link[a, :] + nb * link[b, :]) / (na + nb)
        link[:, a] = link[a, :]
        link[a, a] = -np.inf
        link[b, :] = -np.inf
        link[:, b] = -np.inf
        members[a].extend(members.pop(b))
    groups = []
    for group in members.values():
        centrality = sim[np.ix_(group, group)].mean(axis=1)
        groups.append([group[i] for i in np.argsort(-centrality, kind="stable")])
    return groups


def gaps_report(
    *, days: int | None = None, limit: int | None = None, threshold: float | None = None
) -> GapReport:
    """The open knowledge gaps, largest group first (then the most recently asked)."""
    days = settings.CONSOLE_GAPS_DAYS if days is None else days
    limit = settings.CONSOLE_GAPS_MAX_QUESTIONS if limit is None else limit
    threshold = settings.CONSOLE_GAPS_SIMILARITY if threshold is None else threshold
    since = timezone.now() - timedelta(days=days)
    questions, truncated = _questions(since, limit)
    groups = clusters(_vectors([q.text for q in questions]), threshold=threshold) if questions else []
    gaps = [Gap(questions=[questions[i] for i in group]) for group in groups]
    gaps.sort(key=lambda g: (-len(g.questions), -g.latest.timestamp()))
    return GapReport(gaps=gaps, days=days, limit=limit, since=since, truncated=truncated)


# A question carrying digits or an "@" may name an order, a phone or an e-mail: never drafted
# into an article that every customer's answers draw on.
_PERSONAL = re.compile(r"[\d@]")
ALSO_ASK_MAX = 8


def gap_draft(*, gap: Gap) -> dict[str, str]:
    """An article's first draft: the central question as its title, the agents' replies as its
    body, and the group's questions as its "Customers also ask" list (how customers word it:
    it helps the assistant find the article and is never quoted, apps/knowledge/retrieval.py)."""
    title = " ".join(gap.title.split())[:200]
    title = title[:1].upper() + title[1:]
    body = "\n\n".join(r.text.strip() for r in gap.replies)
    asks = list(dict.fromkeys(
        line for q in gap.questions
        if (line := " ".join(q.text.split())[:200]) and not _PERSONAL.search(line)
    ))[:ALSO_ASK_MAX]
    if asks:
        listed = "\n".join(f"- {line}" for line in asks)
        body = f"{body}\n\n## {ALSO_ASK_HEADING}\n\n{listed}".lstrip()
    return {"title": title, "body": body}


def gap_publish_allowed(user: Any) -> bool:
    """Publishing changes what the assistant tells every customer: supervisors and admins only."""
    return staff_role(user) in LEADS


class GapError(Exception):
    """A publish that cannot be done; the message says what to do."""


def gap_publish(*, question_ids: Sequence[UUID], title: str, body: str, by: Any) -> GapArticle:
    """Publish an article to the default help center (indexed before this returns, so the next
    question can cite it) and mark the questions it answers resolved."""
    if not gap_publish_allowed(by):
        raise PermissionError("Publishing articles needs a supervisor or admin.")
    ids = list(
        Message.objects.filter(pk__in=question_ids, role=MessageRole.CUSTOMER).values_list("pk", flat=True)
    )
    if not ids:
        raise GapError("These questions no longer exist; open the knowledge gaps page again.")
    name = by.get_full_name() or by.get_username()
    document = article_publish(kb_slug=settings.KB_DEFAULT_SLUG, title=title, body=body, author=name)
    with transaction.atomic():
        article = GapArticle.objects.create(document=document, title=document.title, published_by=by)
        GapResolved.objects.bulk_create(
            [GapResolved(question_id=pk, article=article) for pk in ids], ignore_conflicts=True
        )
        audit_record(
            actor=by,
            action="knowledge.article.publish",
            target=document,
            detail={"title": document.title, "gap_article_id": str(article.pk), "questions": len(ids)},
        )
    return article


def gap_articles_recent(*, limit: int = 5) -> list[GapArticle]:
    """The articles published from gaps lately, each with how many questions it resolved."""
    return list(
        GapArticle.objects.select_related("published_by").annotate(resolved=Count("questions"))[:limit]
    )
