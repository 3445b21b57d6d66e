"""Moving a conversation to another team (or to none) from the console: the third way a
conversation gets its team, after the widget's setting and the first-message rules
(apps/teams/services.py). PROTOCOL.md §3 has no frame for it, so it is a page form.

Only the assignee or a supervisor/admin moves it; it must be one they can see. The queue
entry follows on commit: the new team's agents get it, the old team's drop it (their sockets
send `conversation_removed`). A waiting, unassigned conversation is offered to the new team's
agents at once when automatic assignment is on."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from django.db import transaction

from apps.audit.services import audit_conversation, conversation_audit_state
from apps.conversations.errors import ConversationForbidden, ConversationNotFound
from apps.conversations.locking import conversation_lock
from apps.conversations.models import Conversation, ConversationState
from apps.teams.models import Team

from .assignment import auto_assign
from .queue import queue_entry_publish_on_commit
from .roles import LEADS, staff_role
from .visibility import conversation_visible_check


@transaction.atomic
def conversation_team_set(*, conversation_id: UUID | str, team_id: int | None, by: Any) -> Conversation:
    team = None
    if team_id is not None:
        team = Team.objects.filter(pk=team_id).first()
        if team is None:
            raise ConversationNotFound("No team has this id; pick one from the list.")
    conversation = conversation_lock(conversation_id=conversation_id)
    if conversation is None:
        raise ConversationNotFound("No conversation has this id.")
    conversation_visible_check(conversation=conversation, agent=by)
    if conversation.assignee_id != by.pk and staff_role(by) not in LEADS:
        raise ConversationForbidden("Only the agent who has this conversation or a supervisor can move it.")
    if conversation.team_id == team_id:
        return conversation
    was = conversation_audit_state(conversation)
    conversation.team = team
    conversation.save(update_fields=["team", "updated_at"])
    audit_conversation(actor=by, action="conversation.team", conversation=conversation, before=was)
    queue_entry_publish_on_commit(conversation_id=conversation.pk)
    if conversation.state == ConversationState.WAITING and conversation.assignee_id is None:
        transaction.on_commit(lambda: auto_assign(conversation_id=conversation.pk), robust=True)
    return conversation
