"""The page's figures and tables for one scope, built once and used by the page, the charts and
the CSV downloads (so a download holds exactly the rows on screen)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.contrib.auth import get_user_model

from apps.teams.models import Team

from .selectors import (
    SUM_COLUMNS,
    Scope,
    average,
    csat_distribution,
    frt_distribution,
    percentiles,
    rate,
    summary_from,
    sums_grouped,
)

TABLES = {
    "daily": "Conversations per day",
    "frt": "First response time of a person",
    "csat": "CSAT ratings",
    "hours": "Busiest hours",
    "teams": "By team",
    "agents": "By agent",
}
_ROW_HEADERS = ["Conversations", "AI involved", "AI resolved", "AI resolution rate", "Handovers",
                "Avg first response (s)", "CSAT avg", "SLA met", "SLA breached"]


@dataclass
class Report:
    scope: Scope
    summary: dict[str, Any]
    headline: list[tuple[str, str, str]]  # (label, value, hint)
    tables: dict[str, tuple[list[str], list[list[Any]]]] = field(default_factory=dict)
    charts: dict[str, Any] = field(default_factory=dict)


def _row(sums: dict[str, int]) -> list[Any]:
    return [sums["conversations"], sums["ai_involved"], sums["ai_resolved"],
            _pct(rate(sums["ai_resolved"], sums["ai_involved"])), sums["handovers"],
            _whole(average(sums["frt_sum"], sums["answered"])), average(sums["csat_sum"], sums["csat_count"]),
            sums["sla_met"], sums["sla_breached"]]


def _whole(value: float | None) -> int | None:
    return None if value is None else round(value)


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.1f}%"


def duration(seconds: int | None) -> str:
    if seconds is None:
        return "—"
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m {seconds % 60:02d}s"
    return f"{seconds // 3600}h {seconds % 3600 // 60:02d}m"


def report_build(scope: Scope) -> Report:
    grouped = sums_grouped(scope)  # one pass over the period for the four breakdowns
    by_day, by_hour, by_team, by_agent = (grouped[g] for g in ("day", "hour", "team", "agent"))
    total = {c: sum(d[c] for d in by_day.values()) for c in SUM_COLUMNS}
    summary = summary_from(scope, total, percentiles(scope))
    n = total["conversations"]
    sla_n = total["sla_met"] + total["sla_breached"]
    fb_n = total["helpful"] + total["unhelpful"]
    frt, res = summary["first_response_s"], summary["resolution_s"]
    csat = summary["csat"]["average"]
    headline = [
        ("Conversations", f"{n:,}", "started in the period"),
        ("AI involvement", _pct(rate(total["ai_involved"], n)),
         f"{total['ai_involved']:,} the assistant answered in"),
        ("AI resolution rate", _pct(summary["ai_resolution_rate"]),
         f"{total['ai_resolved']:,} of the involved"),
        ("Handover rate", _pct(rate(total["handovers"], n)),
         f"{total['handovers']:,} asked for or got a person"),
        ("First response (p50 / p90)", f"{duration(frt['p50'])} / {duration(frt['p90'])}",
         "after a handover"),
        ("Resolution (p50 / p90)", f"{duration(res['p50'])} / {duration(res['p90'])}", "start to close"),
        ("CSAT", "—" if csat is None else f"{csat:.2f} / 5", f"{total['csat_count']:,} ratings"),
        ("SLA met", _pct(rate(total["sla_met"], sla_n)), f"{total['sla_breached']:,} breached"),
        ("Helpful answers", _pct(rate(total["helpful"], fb_n)),
         f"{total['helpful']:,} helpful · {total['unhelpful']:,} not"),
    ]
    report = Report(scope=scope, summary=summary, headline=headline)
    days = _all_days(scope, by_day)
    report.tables["daily"] = (["Day", *_ROW_HEADERS],
                              [[str(d), *_row(by_day.get(d) or dict.fromkeys(SUM_COLUMNS, 0))] for d in days])
    frt_rows = frt_distribution(total)
    report.tables["frt"] = (["First response", "Conversations"], [list(r) for r in frt_rows])
    csat_rows = csat_distribution(total)
    report.tables["csat"] = (["Rating", "Ratings"], [list(r) for r in csat_rows])
    hours = [(h, by_hour.get(h, {}).get("conversations", 0)) for h in range(24)]
    report.tables["hours"] = (
        [f"Hour ({scope.time_zone})", "Conversations"], [[f"{h:02d}:00", c] for h, c in hours]
    )
    teams = dict(Team.objects.filter(pk__in=list(by_team)).values_list("pk", "name"))
    report.tables["teams"] = (["Team", *_ROW_HEADERS],
                              [[teams.get(k, "No team"), *_row(v)] for k, v in by_team.items()])
    users = {u.pk: (u.get_full_name() or u.get_username())
             for u in get_user_model().objects.filter(pk__in=list(by_agent))}
    report.tables["agents"] = (["Agent", *_ROW_HEADERS],
                               [[users.get(k, "Unassigned"), *_row(v)] for k, v in by_agent.items()])
    report.charts = {
        "volume": {"labels": [str(d) for d in days],
                   "conversations": [by_day.get(d, {}).get("conversations", 0) for d in days],
                   "ai_resolved": [by_day.get(d, {}).get("ai_resolved", 0) for d in days],
                   "handovers": [by_day.get(d, {}).get("handovers", 0) for d in days]},
        "frt": {"labels": [r[0] for r in frt_rows], "values": [r[1] for r in frt_rows]},
        "csat": {"labels": [f"{r[0]} ★" for r in csat_rows], "values": [r[1] for r in csat_rows]},
        "hours": {"labels": [f"{h:02d}" for h, _ in hours], "values": [c for _, c in hours]},
    }
    return report


def _all_days(scope: Scope, by_day: dict[Any, Any]) -> list[Any]:
    """Every day of the period (a quiet day shows as a zero, not a gap), at most a year of them."""
    from zoneinfo import ZoneInfo

    tz = ZoneInfo(scope.time_zone)
    first = scope.since.astimezone(tz).date()
    last = (scope.until - timedelta(microseconds=1)).astimezone(tz).date()
    if (last - first).days > 366:
        return sorted(by_day)
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]
