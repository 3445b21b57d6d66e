"""What agents change: takeover, assignment, hand-back, replies, notes, closing, reading.

Conversation state changes lock the conversation row first (`conversation_lock`, in the one
order of apps/conversations/locking.py), so two agents in two processes take turns and exactly
one claim wins. Customer-visible changes emit their
durable event through the event gate in the same transaction; notes stay in the console's own
table and group (DESIGN.md "Two audiences").
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models.functions import Greatest

from apps.audit.services import audit_conversation, audit_record, conversation_audit_state
from apps.conversations.errors import ConversationConflict, ConversationNotFound
from apps.conversations.events import event_emit
from apps.conversations.locking import conversation_lock
from apps.conversations.models import Conversation, ConversationState, Message, MessageRole
from apps.conversations.publisher import Published, publisher
from apps.conversations.services import conversation_close as _conversation_close
from apps.conversations.services import message_create
from apps.sla.services import sla_clocks_stop

from .models import ConversationRead, Note
from .queue import queue_entry_publish_on_commit
from .roles import LEADS, staff_role
from .selectors import agent_name, note_to_wire
from .visibility import conversation_visible_check


@dataclass(frozen=True)
class Takeover:
    conversation: Conversation
    stopped_turn_ids: list[str] = field(default_factory=list)  # signal the runners after commit


def _locked(conversation_id: UUID | str, agent: Any) -> Conversation:
    # First, before its turns (apps/conversations/locking.py).
    conversation = conversation_lock(conversation_id=conversation_id)
    if conversation is None:
        raise ConversationNotFound("No conversation has this id.")
    conversation_visible_check(conversation=conversation, agent=agent)  # another team's: not_found
    return conversation


def _open(conversation: Conversation) -> None:
    if conversation.state == ConversationState.CLOSED:
        raise ConversationConflict(
            "This conversation is closed; the customer's next message opens a new one."
        )


def _not_someone_elses(conversation: Conversation, agent: Any) -> None:
    if conversation.assignee_id is not None and conversation.assignee_id != agent.pk:
        raise ConversationConflict(
            f"{agent_name(conversation.assignee)} has this conversation; ask them to assign it to you."
        )


def _holder_or_lead(conversation: Conversation, agent: Any) -> None:
    """Only the assignee or a supervisor/admin moves a conversation someone else holds."""
    if conversation.assignee_id is None or conversation.assignee_id == agent.pk:
        return
    if staff_role(agent) not in LEADS:
        raise ConversationConflict(
            f"{agent_name(conversation.assignee)} has this conversation; only they or a supervisor "
            "can reassign or release it."
        )


def _turns_stop(conversation_id: UUID | str) -> list[str]:
    # The assistant's durable turns (apps/assistant/turn_store.py); in the caller's transaction.
    from apps.assistant.turn_store import turns_stop

    return turns_stop(conversation_id=conversation_id)


def _to_agent(conversation: Conversation, agent: Any) -> list[str]:
    """Give the conversation to `agent` (state human): the assistant stops and stays silent."""
    changed = conversation.state != ConversationState.HUMAN or conversation.assignee_id != agent.pk
    conversation.state = ConversationState.HUMAN
    conversation.assignee = agent
    conversation.save(update_fields=["state", "assignee", "updated_at"])
    stopped = _turns_stop(conversation.pk)
    if changed:
        event_emit(
            conversation=conversation, type="handoff", payload={"state": "human", "agent": agent_name(agent)}
        )
    return stopped


@transaction.atomic
def conversation_claim(*, conversation_id: UUID | str, agent: Any) -> Takeover:
    """Take over from the assistant or the queue. One winner: the others get `conflict`."""
    conversation = _locked(conversation_id, agent)
    _open(conversation)
    _not_someone_elses(conversation, agent)
    if conversation.state == ConversationState.HUMAN and conversation.assignee_id == agent.pk:
        return Takeover(conversation)  # a repeated claim changes nothing
    was = conversation_audit_state(conversation)
    takeover = Takeover(conversation, _to_agent(conversation, agent))
    audit_conversation(actor=agent, action="conversation.claim", conversation=conversation, before=was)
    return takeover


@transaction.atomic
def conversation_assign(*, conversation_id: UUID | str, agent_id: int, by: Any) -> Takeover:
    """Give the conversation to a named agent (a transfer, or a supervisor's assignment)."""
    target = get_user_model().objects.filter(pk=agent_id, is_staff=True, is_active=True).first()
    if target is None:
        raise ConversationNotFound("No active agent has this id.")
    conversation = _locked(conversation_id, by)
    _open(conversation)
    _holder_or_lead(conversation, by)
    was = conversation_audit_state(conversation)
    stopped = _to_agent(conversation, target)
    audit_conversation(actor=by, action="conversation.assign", conversation=conversation, before=was)
    queue_entry_publish_on_commit(conversation_id=conversation.pk)  # the assignee may change alone
    return Takeover(conversation, stopped)


@transaction.atomic
def conversation_release(*, conversation_id: UUID | str, agent: Any) -> Conversation:
    """Hand back to the assistant: it answers the customer's next message."""
    conversation = _locked(conversation_id, agent)
    _open(conversation)
    _holder_or_lead(conversation, agent)
    if conversation.state != ConversationState.BOT:
        was = conversation_audit_state(conversation)
        conversation.state = ConversationState.BOT
        conversation.assignee = None
        conversation.save(update_fields=["state", "assignee", "updated_at"])
        event_emit(conversation=conversation, type="handoff", payload={"state": "bot", "agent": None})
        audit_conversation(actor=agent, action="conversation.release", conversation=conversation, before=was)
        sla_clocks_stop(conversation_id=conversation.pk)  # the queue owes it nothing now
    return conversation


@transaction.atomic
def conversation_close(*, conversation_id: UUID | str, agent: Any) -> Takeover:
    """Close it; the customer gets the CSAT question. Any answer being generated stops."""
    conversation = _locked(conversation_id, agent)
    _open(conversation)
    _not_someone_elses(conversation, agent)
    stopped = _turns_stop(conversation.pk)
    was = conversation_audit_state(conversation)
    closed = _conversation_close(conversation_id=conversation.pk)
    audit_conversation(actor=agent, action="conversation.close", conversation=closed, before=was)
    return Takeover(closed, stopped)


@transaction.atomic
def agent_reply(
    *, conversation_id: UUID | str, agent: Any, client_msg_id: UUID, text: str
) -> tuple[Message, bool]:
    """A message to the customer (role agent), idempotent on `client_msg_id`: (message, created)."""
    existing = Message.objects.filter(conversation_id=conversation_id, client_msg_id=client_msg_id).first()
    if existing is not None:
        return existing, False
    conversation = _locked(conversation_id, agent)
    _open(conversation)
    if conversation.assignee_id is None:
        raise ConversationConflict("Claim this conversation before replying, so the assistant stops.")
    _not_someone_elses(conversation, agent)
    message = message_create(
        conversation=conversation,
        role=MessageRole.AGENT,
        text=text,
        author_id=agent.pk,
        client_msg_id=client_msg_id,
    )
    conversation_read(conversation_id=conversation.pk, seq=message.seq)
    audit_conversation(actor=agent, action="conversation.reply", conversation=conversation,
                       detail={"message_id": str(message.id), "seq": message.seq})
    sla_clocks_stop(conversation_id=conversation.pk, kinds=("first_response",))
    return message, True


@transaction.atomic
def note_create(
    *, conversation_id: UUID | str, agent: Any, client_msg_id: UUID, text: str
) -> tuple[Note, bool]:
    """An internal note: stored in the console's table and sent to agents only."""
    existing = Note.objects.filter(conversation_id=conversation_id, client_msg_id=client_msg_id).first()
    if existing is not None:
        return existing, False
    conversation = Conversation.objects.filter(pk=conversation_id).only("team_id", "assignee_id").first()
    if conversation is None:
        raise ConversationNotFound("No conversation has this id.")
    conversation_visible_check(conversation=conversation, agent=agent)
    note = Note.objects.create(
        conversation_id=conversation_id, author=agent, text=text, client_msg_id=client_msg_id
    )
    event = {"type": "note", "conversation_id": str(conversation_id), "note": note_to_wire(note)}
    publisher().publish(Published(str(conversation_id), None, event))  # on commit, to its agents only
    audit_record(actor=agent, action="conversation.note", target=conversation,
                 detail={"note_id": str(note.id)})
    return note, True


def conversation_read(*, conversation_id: UUID | str, seq: int) -> bool:
    """Agents have read the conversation up to `seq`: its unread count drops (queue updated)."""
    with transaction.atomic():
        read, created = ConversationRead.objects.get_or_create(
            conversation_id=conversation_id, defaults={"seq": seq}
        )
        if not created:
            if read.seq >= seq:
                return False
            ConversationRead.objects.filter(pk=conversation_id).update(seq=Greatest("seq", seq))
        queue_entry_publish_on_commit(conversation_id=conversation_id)
    return True
