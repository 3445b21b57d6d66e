"""Which conversations a staff member sees, by team (the rule: apps/teams/selectors.py):
supervisors and admins all of them, an agent their teams' and those assigned to them.

A `Viewer` is computed once per socket (and again each heartbeat, so a team or role change
applies within one) or per page, and checks queue entries without a query. The services check
rows they already locked: another team's conversation is `not_found` to an agent, as on the
pages (404), so its existence is not given away."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from uuid import UUID

from django.db.models import Q

from apps.conversations.errors import ConversationNotFound
from apps.conversations.models import Conversation
from apps.teams.selectors import conversation_visible, team_ids_of, visible_q

from .roles import LEADS, staff_role


@dataclass(frozen=True)
class Viewer:
    agent_id: int
    sees_all: bool
    team_ids: frozenset[int]

    def sees(self, *, team_id: int | None, assignee_id: int | None) -> bool:
        return conversation_visible(
            team_id=team_id, assignee_id=assignee_id, agent_id=self.agent_id,
            team_ids=self.team_ids, sees_all=self.sees_all,
        )

    def sees_entry(self, entry: dict[str, Any]) -> bool:
        """A `conversation` queue entry (PROTOCOL.md §3) as the sockets receive it."""
        team, assignee = entry.get("team"), entry.get("assignee")
        return self.sees(team_id=team and team["id"], assignee_id=assignee and assignee["id"])

    def q(self, prefix: str = "") -> Q:
        return visible_q(
            agent_id=self.agent_id, team_ids=self.team_ids, sees_all=self.sees_all, prefix=prefix
        )


def viewer_for(*, user: Any) -> Viewer:
    sees_all = staff_role(user) in LEADS
    return Viewer(user.pk, sees_all, frozenset() if sees_all else team_ids_of(user_id=user.pk))


def conversation_visible_check(*, conversation: Conversation, agent: Any) -> None:
    """Raise `not_found` unless `agent` may see it (its holder needs no query: a reply's path)."""
    if conversation.assignee_id is not None and conversation.assignee_id == agent.pk:
        return
    viewer = viewer_for(user=agent)
    if not viewer.sees(team_id=conversation.team_id, assignee_id=conversation.assignee_id):
        raise ConversationNotFound("No conversation has this id.")


def conversation_get_visible(*, conversation_id: UUID | str, viewer: Viewer) -> Conversation | None:
    """The conversation if it exists and the viewer may see it (pages answer 404 otherwise)."""
    return (
        Conversation.objects.select_related("customer", "assignee", "team")
        .filter(viewer.q(), pk=conversation_id)
        .first()
    )


def conversation_visible_to(*, conversation_id: UUID | str, user: Any) -> Conversation | None:
    return conversation_get_visible(conversation_id=conversation_id, viewer=viewer_for(user=user))
