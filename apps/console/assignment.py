"""Automatic assignment (CONSOLE_AUTO_ASSIGN, off by default): a waiting, unassigned
conversation goes to the online agent who least recently got one (round robin), among those
who accept automatic assignment and hold fewer open conversations than their limit. Only
agents who would see it take part: the members of its team, or for a conversation with no
team the staff in no team (apps/teams/selectors.py).

Called explicitly after the commit of each change that leaves a conversation waiting
(apps/conversations/services.py runs the handler this app registers in apps.py), never as a
side effect of broadcasting its queue entry."""

from __future__ import annotations

import logging
from uuid import UUID

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.db.models import Count, F
from django.utils import timezone

from apps.conversations.locking import conversation_lock
from apps.conversations.models import Conversation, ConversationState

from .models import AgentProfile
from .presence import online_agent_ids

logger = logging.getLogger(__name__)


def auto_assign(*, conversation_id: UUID | str) -> int | None:
    """Assign the conversation if the option is on and someone can take it: the agent's id."""
    if not settings.CONSOLE_AUTO_ASSIGN:
        return None
    online = online_agent_ids()
    if not online:
        return None
    from .services import _to_agent

    with transaction.atomic():
        # The conversation, then the advisory lock, then its turns (apps/conversations/locking.py).
        conversation = conversation_lock(conversation_id=conversation_id)
        if (
            conversation is None
            or conversation.state != ConversationState.WAITING
            or conversation.assignee_id
        ):
            return None
        agent = _next_agent(online, team_id=conversation.team_id)
        if agent is None:
            return None
        _to_agent(conversation, agent)
        AgentProfile.objects.update_or_create(user=agent, defaults={"last_assigned_at": timezone.now()})
    logger.info("conversation %s assigned to agent %s automatically", conversation_id, agent.pk)
    return agent.pk


def _next_agent(online: set[int], *, team_id: int | None):
    # One assigner at a time across processes, so limits hold when conversations arrive together.
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(hashtext('kefu.console.auto_assign'))")
    open_counts = dict(
        Conversation.objects.filter(assignee_id__in=online, state=ConversationState.HUMAN)
        .values_list("assignee_id")
        .annotate(n=Count("pk"))
    )
    users = (
        get_user_model()
        .objects.filter(pk__in=online, is_staff=True, is_active=True)
        .filter(**({"teams": team_id} if team_id is not None else {"teams__isnull": True}))
        .exclude(agent_profile__auto_assign=False)
        .select_related("agent_profile")
        .order_by(F("agent_profile__last_assigned_at").asc(nulls_first=True), "pk")
    )
    for user in users:
        profile = getattr(user, "agent_profile", None)
        limit = settings.CONSOLE_AUTO_ASSIGN_LIMIT
        if profile is not None and profile.max_open is not None:
            limit = profile.max_open
        if open_counts.get(user.pk, 0) < limit:
            return user
    return None
