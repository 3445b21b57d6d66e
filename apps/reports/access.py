"""Who sees which figures, and the periods the page offers.

Supervisors and admins (and the REPORTS_TOKEN bearer) see every team and agent. An agent sees
their own figures only: the conversations assigned to them, optionally within one of their
own teams; naming another agent or a team they are not in is refused (403), not narrowed
silently, so a number on screen never means something other than what was asked for.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.conf import settings
from django.core.exceptions import PermissionDenied

from apps.console.roles import LEADS, staff_role
from apps.teams.models import Team

from .selectors import Scope

PERIODS = {"today": "Today", "7d": "Last 7 days", "30d": "Last 30 days", "custom": "Custom"}


@dataclass(frozen=True)
class Viewer:
    lead: bool  # every team and agent
    user_id: int | None = None
    team_ids: frozenset[int] = frozenset()


def viewer_for(user: Any) -> Viewer | None:
    role = staff_role(user)
    if role is None:
        return None
    if role in LEADS:
        return Viewer(lead=True, user_id=user.pk)
    return Viewer(lead=False, user_id=user.pk, team_ids=frozenset(user.teams.values_list("pk", flat=True)))


def scope_for(
    viewer: Viewer, *, since: datetime, until: datetime, team_id: int | None, agent_id: int | None
) -> Scope:
    """The scope this viewer may see for what was asked (PermissionDenied otherwise)."""
    if not viewer.lead:
        if agent_id is not None and agent_id != viewer.user_id:
            raise PermissionDenied("Agents see their own figures only; leave the agent filter out.")
        if team_id is not None and team_id not in viewer.team_ids:
            raise PermissionDenied("Agents see the figures of their own teams only.")
        agent_id = viewer.user_id
    return Scope(since=since, until=until, team_id=team_id, agent_id=agent_id, time_zone=_zone(team_id))


def _zone(team_id: int | None) -> str:
    """Days and hours of the charts: the team's time zone, else the site's."""
    name = settings.TIME_ZONE
    if team_id is not None:
        name = Team.objects.filter(pk=team_id).values_list("time_zone", flat=True).first() or name
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return settings.TIME_ZONE
    return name


def period_bounds(period: str, *, now: datetime, zone: str, start: Any = None, end: Any = None
                  ) -> tuple[datetime, datetime]:
    """[since, until) of a preset in `zone` (today: since local midnight; N days: the N days up to
    now, today included; custom: start date's midnight to the day after the end date)."""
    tz = ZoneInfo(zone)
    today = now.astimezone(tz).date()
    if period in ("today", "7d", "30d"):
        days = 1 if period == "today" else int(period[:-1])
        return datetime.combine(today - timedelta(days=days - 1), datetime.min.time(), tzinfo=tz), now
    since = datetime.combine(start, datetime.min.time(), tzinfo=tz)
    until = datetime.combine(end + timedelta(days=1), datetime.min.time(), tzinfo=tz)
    return since, until
