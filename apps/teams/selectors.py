"""Who sees which conversation, by team (PROTOCOL.md §3: "An agent sees only their teams'
conversations; a supervisor sees all").

- Supervisors and admins (`sees_all`) see every conversation.
- An agent sees the conversations of their teams and those assigned to them.
- A conversation with no team is seen by agents who belong to no team (so a workspace that
  uses no teams works as before) and by whoever holds it; agents in a team see only their
  teams' (a supervisor routes the others).

The rule is written once for rows (`visible_q`) and once for a queue entry already built
(`conversation_visible`), which the console's sockets check without a query."""

from __future__ import annotations

from collections.abc import Collection

from django.db.models import Q

from .models import Team


def team_ids_of(*, user_id: int) -> frozenset[int]:
    return frozenset(Team.members.through.objects.filter(user_id=user_id).values_list("team_id", flat=True))


def conversation_visible(
    *, team_id: int | None, assignee_id: int | None, agent_id: int, team_ids: Collection[int], sees_all: bool
) -> bool:
    if sees_all or (assignee_id is not None and assignee_id == agent_id):
        return True
    if team_id is None:
        return not team_ids
    return team_id in team_ids


def visible_q(*, agent_id: int, team_ids: Collection[int], sees_all: bool, prefix: str = "") -> Q:
    """The same rule as a filter on conversations (`prefix`: the path to them, e.g. "conversation__")."""
    if sees_all:
        return Q()
    q = Q(**{f"{prefix}assignee_id": agent_id})
    if team_ids:
        return q | Q(**{f"{prefix}team_id__in": list(team_ids)})
    return q | Q(**{f"{prefix}team__isnull": True})


def teams_list() -> list[Team]:
    return list(Team.objects.order_by("name"))
