"""Reading the figures of a period: sums from the hourly rollups for the whole hours inside it
and from the facts for its partial first and last hours (so any since/until is exact), and
percentiles from the facts' covering indexes. Nothing here reads a message.

Percentiles are `percentile_disc`: the p50 is a time some conversation actually waited, the
smallest one that at least half of them did not exceed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import connection

from .facts import FRT_BIN_LABELS, ROLLUP_SUMS

SUM_COLUMNS = tuple(ROLLUP_SUMS)


@dataclass(frozen=True)
class Scope:
    """Which conversations count: started in [since, until), of a team and/or an agent."""

    since: datetime
    until: datetime
    team_id: int | None = None
    agent_id: int | None = None
    time_zone: str = "UTC"  # of the per-day and per-hour groups


def _hours(scope: Scope) -> tuple[datetime, datetime]:
    """[h0, h1): the whole UTC hours inside the period (h0 >= h1: none)."""
    floor = scope.since.replace(minute=0, second=0, microsecond=0)
    h0 = floor if floor == scope.since else floor + timedelta(hours=1)
    h1 = scope.until.replace(minute=0, second=0, microsecond=0)
    return h0, max(h1, h0)


def _filters(scope: Scope, params: dict[str, Any]) -> str:
    sql = ""
    if scope.team_id is not None:
        sql += " AND team_id = %(team)s"
        params["team"] = scope.team_id
    if scope.agent_id is not None:
        sql += " AND agent_id = %(agent)s"
        params["agent"] = scope.agent_id
    return sql


# A group's key over rollup rows and over facts (days and hours of the day in the scope's zone).
_KEYS = {
    "day": ("(hour AT TIME ZONE %(tz)s)::date", "(started_at AT TIME ZONE %(tz)s)::date"),
    "hour": ("extract(hour FROM hour AT TIME ZONE %(tz)s)::int",
             "extract(hour FROM started_at AT TIME ZONE %(tz)s)::int"),
    "team": ("team_id", "team_id"),
    "agent": ("agent_id", "agent_id"),
}
# Bigint sums add up as numeric in Postgres (slow): only these two can outgrow an int.
_BIG = frozenset({"frt_sum", "resolution_sum"})


def _parts(scope: Scope, groups: tuple[str, ...], params: dict[str, Any]) -> str:
    """The period's rows to add up: whole hours from the rollups, the partial first and last
    hours from the facts (grouped by `groups` and team/agent first), with the columns `groups`
    then SUM_COLUMNS."""
    h0, h1 = _hours(scope)
    params.update(since=scope.since, until=scope.until, h0=h0, h1=h1, tz=scope.time_zone)
    where = _filters(scope, params)
    cast = lambda name: "" if name in _BIG else "::int"  # noqa: E731
    keys_rollup = "".join(f"{_KEYS[g][0]} AS {g}, " for g in groups)
    keys_fact = "".join(f"{_KEYS[g][1]}, " for g in groups)
    rollup_cols = ", ".join(SUM_COLUMNS)
    fact_sums = ", ".join(f"({expr}){cast(name)}" for name, expr in ROLLUP_SUMS.items())
    group_by = ", ".join(str(i + 1) for i in range(len(groups))) or "()"
    return f"""
      SELECT {keys_rollup}{rollup_cols} FROM reports_hourlyrollup
       WHERE hour >= %(h0)s AND hour < %(h1)s{where}
      UNION ALL
      SELECT {keys_fact}{fact_sums} FROM reports_conversationfact
       WHERE ((started_at >= %(since)s AND started_at < %(h0)s)
           OR (started_at >= %(h1)s AND started_at < %(until)s))
         AND started_at >= %(since)s AND started_at < %(until)s{where}
       GROUP BY {group_by}"""


def _sums(row: Sequence[Any]) -> dict[str, int]:
    return dict(zip(SUM_COLUMNS, (int(v or 0) for v in row), strict=True))


def sums_by(scope: Scope, group: str | None = None) -> dict[Any, dict[str, int]]:
    """The rollup sums of the period, per group: None (one total, key 0), "day", "hour" (of the
    day, in the scope's time zone), "team" or "agent". Groups with no conversation are absent."""
    if group is None:
        return {0: total} if (total := _total(scope))["conversations"] else {}
    return sums_grouped(scope, (group,))[group]


def _total(scope: Scope) -> dict[str, int]:
    params: dict[str, Any] = {}
    outer = ", ".join(f"coalesce(sum({name}), 0)::bigint" for name in SUM_COLUMNS)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {outer} FROM ({_parts(scope, (), params)}) parts", params)
        return _sums(cursor.fetchone())


def sums_grouped(scope: Scope, groups: tuple[str, ...] = ("day", "hour", "team", "agent")
                 ) -> dict[str, dict[Any, dict[str, int]]]:
    """`sums_by` for several groups at once: one pass over the period's rows (GROUPING SETS)."""
    params: dict[str, Any] = {}
    outer = ", ".join(f"sum({name})::bigint" for name in SUM_COLUMNS)
    sets = ", ".join(f"({g})" for g in groups)
    sql = f"""
    SELECT grouping({', '.join(groups)}), {', '.join(groups)}, {outer}
      FROM ({_parts(scope, groups, params)}) parts
     GROUP BY GROUPING SETS ({sets})"""
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    # grouping() has a bit set for each group not in the row's set, the first group highest.
    bit = {g: 1 << (len(groups) - 1 - i) for i, g in enumerate(groups)}
    out: dict[str, dict[Any, dict[str, int]]] = {g: {} for g in groups}
    for row in rows:
        for i, g in enumerate(groups):
            if not row[0] & bit[g]:
                sums = _sums(row[1 + len(groups):])
                if sums["conversations"]:
                    out[g][row[1 + i]] = sums
    return {g: dict(sorted(v.items())) for g, v in out.items()}


def _percentiles_sql(scope: Scope, params: dict[str, Any]) -> str:
    """Two array columns, [p50, p90] of first response and of resolution (facts' covering indexes)."""
    params.update(since=scope.since, until=scope.until)
    where = _filters(scope, params)
    part = (
        "(SELECT percentile_disc(ARRAY[0.5, 0.9]) WITHIN GROUP (ORDER BY {col}) FROM reports_conversationfact"
        " WHERE {col} IS NOT NULL AND started_at >= %(since)s AND started_at < %(until)s" + where + ")"
    )
    return f"{part.format(col='frt_s')}, {part.format(col='resolution_s')}"


def _pairs(frt: Sequence[int] | None, resolution: Sequence[int] | None) -> dict[str, dict[str, int | None]]:
    pair = lambda values: {"p50": values[0], "p90": values[1]} if values else {"p50": None, "p90": None}  # noqa: E731
    return {"first_response_s": pair(frt), "resolution_s": pair(resolution)}


def percentiles(scope: Scope) -> dict[str, dict[str, int | None]]:
    """p50/p90 of first response and resolution times (seconds) over the period's facts."""
    params: dict[str, Any] = {}
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {_percentiles_sql(scope, params)}", params)
        return _pairs(*cursor.fetchone())


def rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def average(total: int, count: int) -> float | None:
    return round(total / count, 2) if count else None


def summary(scope: Scope) -> dict[str, Any]:
    """PROTOCOL.md §3 `GET /api/reports/summary`."""
    # One statement: the sums and both percentiles.
    params: dict[str, Any] = {}
    outer = ", ".join(f"coalesce(sum({name}), 0)::bigint" for name in SUM_COLUMNS)
    sql = f"SELECT {outer}, {_percentiles_sql(scope, params)} FROM ({_parts(scope, (), params)}) parts"
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    return summary_from(scope, _sums(row[:-2]), _pairs(*row[-2:]))


def summary_from(scope: Scope, total: dict[str, int], pct: dict[str, Any]) -> dict[str, Any]:
    return {
        "since": scope.since.isoformat(),
        "until": scope.until.isoformat(),
        "conversations": total["conversations"],
        "ai_involved": total["ai_involved"],
        "ai_resolved": total["ai_resolved"],
        "ai_resolution_rate": rate(total["ai_resolved"], total["ai_involved"]),
        "handovers": total["handovers"],
        "first_response_s": pct["first_response_s"],
        "resolution_s": pct["resolution_s"],
        "csat": {"count": total["csat_count"], "average": average(total["csat_sum"], total["csat_count"])},
        "sla": {"met": total["sla_met"], "breached": total["sla_breached"]},
        "feedback": {"helpful": total["helpful"], "unhelpful": total["unhelpful"]},
    }


def frt_distribution(total: dict[str, int]) -> list[tuple[str, int]]:
    return [(label, total.get(f"frt_b{i}", 0)) for i, label in enumerate(FRT_BIN_LABELS)]


def csat_distribution(total: dict[str, int]) -> list[tuple[int, int]]:
    return [(k, total.get(f"csat_{k}", 0)) for k in range(1, 6)]
