"""Computing the rollups: a conversation's facts from its rows, and their hourly sums.

One SQL text computes facts for both paths, so the incremental refresh and the full rebuild
cannot drift apart: `_FACTS` reads per-conversation aggregates from `_PER_ID` (index lookups
for a handful of conversations) or `_PER_ALL` (hash-joined aggregates for all of them).

Definitions (PROTOCOL.md §3), for a conversation:
- ai_involved: the assistant answered at least once (a message with role `assistant`);
- handover_at: the first time a person was asked for (`handoff` to `waiting`) or took over
  (`handoff` to `human`, or an agent's message), whichever came first;
- frt_s: from handover_at to the first agent message; resolution_s: from start to close;
- ai_resolved: involved, no handover, and closed or idle (no message) for 24 hours. Kefu has no
  "the customer marked it resolved" mark today, so that clause adds nothing;
- sla_met: null without SLA clocks, else true when none of them has breached.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from django.db import connection, transaction
from django.utils import timezone

IDLE_RESOLVED_S = 24 * 3600
# Upper bounds (seconds) of the first-response bins frt_b0..frt_b4; frt_b5 is the rest.
FRT_BINS = (60, 300, 900, 3600, 14400)
FRT_BIN_LABELS = ("< 1 min", "1–5 min", "5–15 min", "15–60 min", "1–4 h", "≥ 4 h")

_PER_ID = """
conversations_conversation c
LEFT JOIN LATERAL (
  SELECT bool_or(role = 'assistant') AS ai, min(created_at) FILTER (WHERE role = 'agent') AS first_agent_at,
         max(created_at) AS last_at
    FROM conversations_message WHERE conversation_id = c.id) m ON true
LEFT JOIN LATERAL (
  SELECT min(created_at) AS handoff_at FROM conversations_conversationevent
   WHERE conversation_id = c.id AND type = 'handoff' AND payload->>'state' IN ('waiting', 'human')) h ON true
LEFT JOIN LATERAL (
  SELECT count(*) FILTER (WHERE fb.helpful) AS helpful, count(*) FILTER (WHERE NOT fb.helpful) AS unhelpful
    FROM conversations_messagefeedback fb JOIN conversations_message fm ON fm.id = fb.message_id
   WHERE fm.conversation_id = c.id) f ON true
LEFT JOIN LATERAL (
  SELECT count(*) AS clocks, count(breached_at) AS breached FROM sla_slaclock
   WHERE conversation_id = c.id) s ON true
WHERE c.id = ANY(%(ids)s::uuid[])
"""

_PER_ALL = """
conversations_conversation c
LEFT JOIN (
  SELECT conversation_id, bool_or(role = 'assistant') AS ai,
         min(created_at) FILTER (WHERE role = 'agent') AS first_agent_at, max(created_at) AS last_at
    FROM conversations_message GROUP BY conversation_id) m ON m.conversation_id = c.id
LEFT JOIN (
  SELECT conversation_id, min(created_at) AS handoff_at FROM conversations_conversationevent
   WHERE type = 'handoff' AND payload->>'state' IN ('waiting', 'human') GROUP BY conversation_id) h
  ON h.conversation_id = c.id
LEFT JOIN (
  SELECT fm.conversation_id, count(*) FILTER (WHERE fb.helpful) AS helpful,
         count(*) FILTER (WHERE NOT fb.helpful) AS unhelpful
    FROM conversations_messagefeedback fb JOIN conversations_message fm ON fm.id = fb.message_id
   GROUP BY fm.conversation_id) f ON f.conversation_id = c.id
LEFT JOIN (
  SELECT conversation_id, count(*) AS clocks, count(breached_at) AS breached FROM sla_slaclock
   GROUP BY conversation_id) s ON s.conversation_id = c.id
"""

FACT_COLUMNS = (
    "conversation_id", "started_at", "team_id", "agent_id", "ai_involved", "handover_at", "first_human_at",
    "last_message_at", "closed_at", "ai_resolved", "frt_s", "resolution_s", "csat_score", "helpful",
    "unhelpful", "sla_met", "refreshed_at",
)

_FACTS = """
SELECT id, created_at, team_id, agent_id, ai_involved, handover_at, first_human_at, last_message_at,
       closed_at,
       ai_involved AND handover_at IS NULL
         AND (closed_at IS NOT NULL OR last_message_at <= %(now)s - make_interval(secs => %(idle_s)s)),
       round(extract(epoch FROM first_human_at - handover_at))::int,
       round(extract(epoch FROM closed_at - created_at))::int,
       csat_score, helpful, unhelpful, sla_met, %(now)s
FROM (
  SELECT c.id, c.created_at, coalesce(c.team_id, 0) AS team_id, coalesce(c.assignee_id, 0) AS agent_id,
         coalesce(m.ai, false) AS ai_involved, least(h.handoff_at, m.first_agent_at) AS handover_at,
         m.first_agent_at AS first_human_at, m.last_at AS last_message_at, c.closed_at, c.csat_score,
         coalesce(f.helpful, 0) AS helpful, coalesce(f.unhelpful, 0) AS unhelpful,
         CASE WHEN coalesce(s.clocks, 0) = 0 THEN NULL ELSE s.breached = 0 END AS sla_met
    FROM {source}
) base
"""

# The rollup columns as sums over facts (the rebuild's GROUP BY and a period's partial hours).
ROLLUP_SUMS = {
    "conversations": "count(*)",
    "ai_involved": "count(*) FILTER (WHERE ai_involved)",
    "ai_resolved": "count(*) FILTER (WHERE ai_resolved)",
    "handovers": "count(handover_at)",
    "answered": "count(frt_s)",
    "frt_sum": "coalesce(sum(frt_s), 0)",
    "closed": "count(resolution_s)",
    "resolution_sum": "coalesce(sum(resolution_s), 0)",
    "csat_count": "count(csat_score)",
    "csat_sum": "coalesce(sum(csat_score), 0)",
    **{f"csat_{k}": f"count(*) FILTER (WHERE csat_score = {k})" for k in range(1, 6)},
    "sla_met": "count(*) FILTER (WHERE sla_met)",
    "sla_breached": "count(*) FILTER (WHERE NOT sla_met)",
    "helpful": "coalesce(sum(helpful), 0)",
    "unhelpful": "coalesce(sum(unhelpful), 0)",
    "frt_b0": "count(*) FILTER (WHERE frt_s < 60)",
    "frt_b1": "count(*) FILTER (WHERE frt_s >= 60 AND frt_s < 300)",
    "frt_b2": "count(*) FILTER (WHERE frt_s >= 300 AND frt_s < 900)",
    "frt_b3": "count(*) FILTER (WHERE frt_s >= 900 AND frt_s < 3600)",
    "frt_b4": "count(*) FILTER (WHERE frt_s >= 3600 AND frt_s < 14400)",
    "frt_b5": "count(*) FILTER (WHERE frt_s >= 14400)",
}
ROLLUP_KEYS = ("hour", "team_id", "agent_id")


def facts_compute(*, ids: Sequence[UUID | str] | None, now: datetime) -> list[tuple[Any, ...]]:
    """The facts (FACT_COLUMNS order) of the conversations `ids`, or of every one (None)."""
    sql = _FACTS.format(source=_PER_ALL if ids is None else _PER_ID)
    with connection.cursor() as cursor:
        cursor.execute(sql, {"ids": [str(i) for i in ids or ()], "now": now, "idle_s": IDLE_RESOLVED_S})
        return cursor.fetchall()


def contribution(fact: dict[str, Any]) -> dict[str, int]:
    """What one fact adds to its rollup row (the Python twin of ROLLUP_SUMS; tests hold them equal)."""
    frt, csat, sla = fact["frt_s"], fact["csat_score"], fact["sla_met"]
    out = {
        "conversations": 1,
        "ai_involved": int(fact["ai_involved"]),
        "ai_resolved": int(fact["ai_resolved"]),
        "handovers": int(fact["handover_at"] is not None),
        "answered": int(frt is not None),
        "frt_sum": frt or 0,
        "closed": int(fact["resolution_s"] is not None),
        "resolution_sum": fact["resolution_s"] or 0,
        "csat_count": int(csat is not None),
        "csat_sum": csat or 0,
        **{f"csat_{k}": int(csat == k) for k in range(1, 6)},
        "sla_met": int(sla is True),
        "sla_breached": int(sla is False),
        "helpful": fact["helpful"],
        "unhelpful": fact["unhelpful"],
        **{f"frt_b{i}": 0 for i in range(len(FRT_BINS) + 1)},
    }
    if frt is not None:
        out[f"frt_b{sum(frt >= edge for edge in FRT_BINS)}"] = 1
    return out


def rollup_key(fact: dict[str, Any]) -> tuple[datetime, int, int]:
    hour = fact["started_at"].astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    return hour, fact["team_id"], fact["agent_id"]


# -- keeping them ------------------------------------------------------------------------------

_ROLLUP_UPSERT = """
INSERT INTO reports_hourlyrollup (hour, team_id, agent_id, {cols}) VALUES {rows}
ON CONFLICT (hour, team_id, agent_id) DO UPDATE SET {sets}
"""


def _lock_key(conversation_id: UUID | str) -> int:
    # One advisory lock per conversation: refreshes of the same conversation take turns, and
    # the later one computes from the later data (it reads after it holds the lock).
    return int.from_bytes(UUID(str(conversation_id)).bytes[:8], "big", signed=True)


@transaction.atomic
def facts_refresh(*, ids: Iterable[UUID | str], now: datetime | None = None) -> int:
    """Recompute the facts of these conversations and move their rollup rows by the difference
    (old fact out, new fact in). Returns how many facts changed."""
    ids = sorted({str(i) for i in ids})
    if not ids:
        return 0
    now = now or timezone.now()
    old = _facts_locked(ids)
    new = {str(row[0]): dict(zip(FACT_COLUMNS, row, strict=True)) for row in facts_compute(ids=ids, now=now)}
    deltas: dict[tuple[datetime, int, int], dict[str, int]] = defaultdict(lambda: defaultdict(int))
    changed = []
    for conversation_id in ids:
        before, after = old.get(conversation_id), new.get(conversation_id)
        if _same(before, after):
            continue
        changed.append(conversation_id)
        for fact, sign in ((before, -1), (after, 1)):
            if fact is not None:
                bucket = deltas[rollup_key(fact)]
                for name, value in contribution(fact).items():
                    bucket[name] += sign * value
    if not changed:
        return 0
    _facts_write([new[i] for i in changed if i in new], gone=[i for i in changed if i not in new])
    _rollups_apply(deltas)
    return len(changed)


def _facts_locked(ids: list[str]) -> dict[str, dict[str, Any]]:
    """Take the conversations' advisory locks (in key order, one statement: two refreshes never
    wait on each other in a circle), then read their stored facts."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(pg_advisory_xact_lock(k)) FROM (SELECT k FROM unnest(%s::bigint[]) k ORDER BY k) s",
            [sorted(_lock_key(i) for i in ids)],
        )
        cursor.execute(
            f"SELECT {', '.join(FACT_COLUMNS)} FROM reports_conversationfact "
            "WHERE conversation_id = ANY(%s::uuid[])",
            [ids],
        )
        return {str(row[0]): dict(zip(FACT_COLUMNS, row, strict=True)) for row in cursor.fetchall()}


@transaction.atomic
def facts_forget(*, conversation_ids: Iterable[UUID | str]) -> int:
    """Take these conversations out of the reports: their facts leave the rollups and are deleted.

    For whoever deletes conversations (retention, erasure, an admin): call it in the deleting
    transaction, before or after the delete. A fact outlives its conversation (no FK cascade),
    so a later `facts_refresh` of a deleted id, or the nightly rebuild, does the same."""
    ids = sorted({str(i) for i in conversation_ids})
    if not ids:
        return 0
    old = _facts_locked(ids)
    deltas: dict[tuple[datetime, int, int], dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for fact in old.values():
        bucket = deltas[rollup_key(fact)]
        for name, value in contribution(fact).items():
            bucket[name] -= value
    _facts_write([], gone=list(old))
    _rollups_apply(deltas)
    return len(old)


def _same(before: dict[str, Any] | None, after: dict[str, Any] | None) -> bool:
    if before is None or after is None:
        return before is after
    return all(before[c] == after[c] for c in FACT_COLUMNS if c != "refreshed_at")


def _facts_write(facts: list[dict[str, Any]], *, gone: list[str]) -> None:
    with connection.cursor() as cursor:
        if gone:
            cursor.execute(
                "DELETE FROM reports_conversationfact WHERE conversation_id = ANY(%s::uuid[])", [gone]
            )
        if facts:
            cols = ", ".join(FACT_COLUMNS)
            rows = ", ".join(["(" + ", ".join(["%s"] * len(FACT_COLUMNS)) + ")"] * len(facts))
            sets = ", ".join(f"{c} = EXCLUDED.{c}" for c in FACT_COLUMNS[1:])
            params = [f[c] for f in facts for c in FACT_COLUMNS]
            cursor.execute(
                f"INSERT INTO reports_conversationfact ({cols}) VALUES {rows} "
                f"ON CONFLICT (conversation_id) DO UPDATE SET {sets}",
                params,
            )


def _rollups_apply(deltas: dict[tuple[datetime, int, int], dict[str, int]]) -> None:
    deltas = {key: d for key, d in deltas.items() if any(d.values())}
    if not deltas:
        return
    names = list(ROLLUP_SUMS)
    rows = ", ".join(["(" + ", ".join(["%s"] * (3 + len(names))) + ")"] * len(deltas))
    sets = ", ".join(f"{n} = reports_hourlyrollup.{n} + EXCLUDED.{n}" for n in names)
    params = [v for key, d in deltas.items() for v in (*key, *(d.get(n, 0) for n in names))]
    with connection.cursor() as cursor:
        cursor.execute(_ROLLUP_UPSERT.format(cols=", ".join(names), rows=rows, sets=sets), params)
        # A row whose last conversation moved away (a new assignee, team) is dropped: every
        # other count is at most `conversations`, so the row is all zeros.
        keys = list(deltas)
        cursor.execute(
            "DELETE FROM reports_hourlyrollup WHERE conversations = 0 AND (hour, team_id, agent_id) IN "
            "(SELECT * FROM unnest(%s::timestamptz[], %s::bigint[], %s::bigint[]))",
            [[k[0] for k in keys], [k[1] for k in keys], [k[2] for k in keys]],
        )


@transaction.atomic
def rollups_rebuild(*, now: datetime | None = None) -> dict[str, int]:
    """Recompute every fact and every rollup row from the conversations (the nightly task,
    `reports_rebuild`). Concurrent refreshes wait for it, then apply on top of its result."""
    now = now or timezone.now()
    cols = ", ".join(FACT_COLUMNS)
    sums = ", ".join(f"{expr} AS {name}" for name, expr in ROLLUP_SUMS.items())
    with connection.cursor() as cursor:
        cursor.execute("LOCK TABLE reports_conversationfact, reports_hourlyrollup IN EXCLUSIVE MODE")
        cursor.execute("DELETE FROM reports_conversationfact")
        cursor.execute(
            # In start order, like the rollups in hour order: a period's rows sit on few pages.
            f"INSERT INTO reports_conversationfact ({cols}) {_FACTS.format(source=_PER_ALL)} ORDER BY 2",
            {"now": now, "idle_s": IDLE_RESOLVED_S},
        )
        facts = cursor.rowcount
        cursor.execute("DELETE FROM reports_hourlyrollup")
        cursor.execute(
            f"INSERT INTO reports_hourlyrollup (hour, team_id, agent_id, {', '.join(ROLLUP_SUMS)}) "
            f"SELECT date_trunc('hour', started_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC', "
            f"team_id, agent_id, {sums} FROM reports_conversationfact GROUP BY 1, 2, 3 ORDER BY 1, 2, 3"
        )
        rows = cursor.rowcount
    return {"facts": facts, "rollup_rows": rows}


# The idle rule turns a quiet conversation resolved with no event to tell us: a sweep does it.
_IDLE_CANDIDATES = """
SELECT conversation_id FROM reports_conversationfact
 WHERE ai_involved AND handover_at IS NULL AND closed_at IS NULL AND NOT ai_resolved
   AND last_message_at <= %(cutoff)s
 LIMIT %(limit)s
"""
# The safety net of the listener's pending batch (a process that died before refreshing it):
# every durable event bumps the conversation's updated_at, so a conversation changed lately
# whose fact is older (or missing) is refreshed.
_CHANGED_RECENT = """
SELECT c.id FROM conversations_conversation c
  LEFT JOIN reports_conversationfact f ON f.conversation_id = c.id
 WHERE c.updated_at >= %(since)s AND (f.conversation_id IS NULL OR f.refreshed_at < c.updated_at)
"""
# SLA clocks change without a conversation event (a breach found by the SLA sweep, a clock made
# after the handover's commit): refresh the conversations whose clocks changed lately.
_SLA_RECENT = """
SELECT DISTINCT conversation_id FROM sla_slaclock
 WHERE breached_at >= %(since)s OR started_at >= %(since)s OR stopped_at >= %(since)s
"""


def facts_sweep(*, now: datetime | None = None, sla_since: datetime | None = None, batch: int = 500) -> int:
    """The resolution-rate rule (idle 24 h → AI-resolved); with `sla_since`, the conversations
    whose SLA clocks changed since then or that changed since their fact was computed."""
    now = now or timezone.now()
    done = 0
    cutoff = now - timedelta(seconds=IDLE_RESOLVED_S)
    while True:
        with connection.cursor() as cursor:
            cursor.execute(_IDLE_CANDIDATES, {"cutoff": cutoff, "limit": batch})
            ids = [row[0] for row in cursor.fetchall()]
        if not ids:
            break
        changed = facts_refresh(ids=ids, now=now)
        done += changed
        if len(ids) < batch or not changed:
            break
    if sla_since is not None:
        with connection.cursor() as cursor:
            cursor.execute(_SLA_RECENT, {"since": sla_since})
            ids = {row[0] for row in cursor.fetchall()}
            cursor.execute(_CHANGED_RECENT, {"since": sla_since})
            ids.update(row[0] for row in cursor.fetchall())
        ordered = sorted(ids, key=str)
        for start in range(0, len(ordered), batch):
            done += facts_refresh(ids=ordered[start:start + batch], now=now)
    return done
