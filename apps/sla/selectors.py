"""Reading SLA setup and clocks: which policy applies, a team's calendar, the queue's clock."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.conf import settings
from django.db.models import OuterRef, Q, Subquery

from apps.conversations.models import Conversation

from .business_time import Calendar
from .models import BusinessHours, Holiday, SlaClock, SlaPolicy


def sla_policy_for(*, team_id: int | None, priority: str) -> SlaPolicy | None:
    """The most specific policy: team and priority, team, priority, then the default."""
    candidates = SlaPolicy.objects.filter(
        Q(team_id=team_id) | Q(team__isnull=True), Q(priority=priority) | Q(priority="")
    )
    ranked = sorted(candidates, key=lambda p: (p.team_id is None, p.priority == ""))
    return ranked[0] if ranked else None


def sla_calendar(*, team_id: int | None, time_zone: str | None) -> Calendar:
    """When the team works: its own hours if it has any, else the default hours (none at all:
    around the clock); its holidays and everyone's; in its time zone."""
    rows = list(BusinessHours.objects.filter(Q(team_id=team_id) | Q(team__isnull=True)))
    own = [r for r in rows if r.team_id is not None and r.team_id == team_id]
    hours: dict[int, list] = {}
    for row in own or [r for r in rows if r.team_id is None]:
        hours.setdefault(row.weekday, []).append((row.opens, row.closes))
    mine = Q(team_id=team_id) | Q(team__isnull=True)
    holidays = Holiday.objects.filter(mine).values_list("date", flat=True)
    return Calendar(
        time_zone=time_zone or settings.TIME_ZONE, hours=hours, holidays=frozenset(holidays)
    )


def _running_clocks() -> Any:
    # Running: not stopped. A breached clock runs on (and shows red) until the conversation is
    # answered or closed.
    return SlaClock.objects.filter(conversation=OuterRef("pk"), stopped_at__isnull=True).order_by("due_at")


def sla_queue_annotations() -> dict[str, Subquery]:
    """Annotations that put each conversation's running clock nearest due on a queue queryset
    (one query for a whole queue); `sla_to_wire` reads them."""
    clocks = _running_clocks()
    return {
        "sla_kind": Subquery(clocks.values("kind")[:1]),
        "sla_due_at": Subquery(clocks.values("due_at")[:1]),
        "sla_breached_at": Subquery(clocks.values("breached_at")[:1]),
        "sla_started_at": Subquery(clocks.values("started_at")[:1]),
    }


def sla_to_wire(conversation: Conversation) -> dict[str, Any] | None:
    """The queue entry's `sla` (PROTOCOL.md §3): {kind, due_at, breached} or null, plus
    `started_at` for the console (how much of the target is left: amber under 20%)."""
    kind = getattr(conversation, "sla_kind", None)
    if kind is None:
        return None
    due_at: datetime = conversation.sla_due_at
    return {
        "kind": kind,
        "due_at": due_at.isoformat(),
        "breached": conversation.sla_breached_at is not None,
        "started_at": conversation.sla_started_at.isoformat(),
    }


def sla_for_conversations(*, conversation_ids: list) -> dict[str, dict[str, Any] | None]:
    """The `sla` of many conversations in one query (for callers without the annotations)."""
    rows = Conversation.objects.filter(pk__in=conversation_ids).annotate(**sla_queue_annotations())
    return {str(c.pk): sla_to_wire(c) for c in rows.only("pk")}
