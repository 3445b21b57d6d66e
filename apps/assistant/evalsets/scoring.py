"""Counting what became of each dev-set question (pure functions: the command does the asking).

An outcome is what the provider's AnswerChunk.outcome said (the last one wins); a provider that
says nothing, or says "answered" without citations, is taken at its citations: no citation is a
decline (what the builtin provider did before `clarify` existed).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

from apps.knowledge.evaluation import percentile

INSCOPE_KINDS = ("cited_relevant", "wrong_article", "clarified", "declined", "tool")
OFFTOPIC_KINDS = ("declined", "clarified", "answered", "tool")


@dataclass(frozen=True)
class Asked:
    """One question's result: its outcome, the external ids it cited and suggested, and the
    seconds from sending the question to knowing the outcome."""

    outcome: str
    cited: frozenset[str] = frozenset()
    suggested: tuple[str, ...] = ()
    seconds: float = 0.0
    text: str = field(default="", compare=False)


def outcome_of(*, said: str | None, citations: list[Any]) -> str:
    if said in (None, "answered"):
        return "answered" if citations else "declined"
    return said


def inscope_kind(row: dict[str, Any], asked: Asked) -> str:
    """cited_relevant, wrong_article (answered citing none of the right articles), clarified,
    declined, or tool."""
    if asked.outcome == "answered":
        return "cited_relevant" if asked.cited & set(row["articles"]) else "wrong_article"
    if asked.outcome == "clarify":
        return "clarified"
    return "tool" if asked.outcome == "tool" else "declined"


def offtopic_kind(asked: Asked) -> str:
    return {"answered": "answered", "clarify": "clarified", "tool": "tool"}.get(asked.outcome, "declined")


def _share(n: int, total: int) -> float:
    return round(n / max(total, 1), 4)


def latency_ms(results: list[Asked]) -> dict[str, float]:
    seconds = [a.seconds for a in results]
    return {"p50": round(percentile(seconds, 50) * 1000, 1), "p95": round(percentile(seconds, 95) * 1000, 1)}


def inscope_summary(pairs: list[tuple[dict[str, Any], Asked]]) -> dict[str, Any]:
    """Shares of in-scope questions per kind; `clarified_right_suggestion` is the share of all
    in-scope questions clarified with a right article among the suggestions."""
    counts: Counter[str] = Counter()
    by_article: dict[str, Counter[str]] = defaultdict(Counter)
    right_suggestion = 0
    for row, asked in pairs:
        kind = inscope_kind(row, asked)
        counts[kind] += 1
        by_article[row["articles"][0]][kind] += 1
        right_suggestion += kind == "clarified" and bool(set(asked.suggested) & set(row["articles"]))
    n = len(pairs)
    return {
        "questions": n,
        **{kind: _share(counts[kind], n) for kind in INSCOPE_KINDS},
        "clarified_right_suggestion": _share(right_suggestion, n),
        "counts": {**{kind: counts[kind] for kind in INSCOPE_KINDS},
                   "clarified_right_suggestion": right_suggestion},
        "time_to_outcome_ms": latency_ms([asked for _, asked in pairs]),
        # Per best article: questions, and how many were answered citing a right one.
        "by_article": {slug: {"questions": sum(c.values()), "cited_relevant": c["cited_relevant"]}
                       for slug, c in sorted(by_article.items())},
    }


def offtopic_summary(pairs: list[tuple[dict[str, Any], Asked]]) -> dict[str, Any]:
    counts: Counter[str] = Counter()
    by_source: dict[str, Counter[str]] = defaultdict(Counter)
    for row, asked in pairs:
        kind = offtopic_kind(asked)
        counts[kind] += 1
        by_source[row.get("source", "")][kind] += 1
    n = len(pairs)
    return {
        "questions": n,
        **{kind: _share(counts[kind], n) for kind in OFFTOPIC_KINDS},
        "counts": {kind: counts[kind] for kind in OFFTOPIC_KINDS},
        "time_to_outcome_ms": latency_ms([asked for _, asked in pairs]),
        "by_source": {source: {"questions": sum(c.values()), "declined": c["declined"]}
                      for source, c in sorted(by_source.items())},
    }
