"""Reading conversations: what a customer may see, the event log for replay, and the reads the
chat and agent sockets make (each one round trip, run through apps.core.db.db_async)."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from django.db import connection
from django.db.models import QuerySet

from .errors import ConversationForbidden, ConversationNotFound
from .events import event_to_wire
from .models import Conversation, ConversationEvent, ConversationState, Message


def _open_conversations(customer_id: Any) -> QuerySet[Conversation]:
    """The customer's conversations that are not closed, newest first."""
    open_ones = Conversation.objects.filter(customer_id=customer_id).exclude(state=ConversationState.CLOSED)
    return open_ones.order_by("-created_at")


def conversation_open_for_customer(*, customer_id: UUID | str) -> Conversation | None:
    """The customer's newest conversation that is not closed, if any."""
    return _open_conversations(customer_id).first()


# `_open_conversations` as one statement. SQL, not the ORM: every socket that connects makes it,
# and building the annotated queryset cost more CPU than Postgres spent answering it
# (bench/ws_sessions.py connects).
_CUSTOMER_OPEN = """
SELECT (SELECT c.id FROM conversations_conversation c
         WHERE c.customer_id = cu.id AND c.state <> %(closed)s ORDER BY c.created_at DESC LIMIT 1)
  FROM customers_customer cu WHERE cu.id = %(customer_id)s
"""


def customer_open_conversation(*, customer_id: UUID | str) -> tuple[bool, UUID | None]:
    """(the customer exists, id of their open conversation or None): the chat socket's auth,
    in one query (every socket that connects makes it)."""
    with connection.cursor() as cursor:
        cursor.execute(_CUSTOMER_OPEN, {"customer_id": customer_id, "closed": ConversationState.CLOSED.value})
        row = cursor.fetchone()
    return (True, row[0]) if row is not None else (False, None)


def conversation_last_seq(*, conversation_id: UUID | str) -> int:
    """The seq of the conversation's newest event (0 if none, or no such conversation)."""
    return conversation_last_seq_or_none(conversation_id=conversation_id) or 0


def conversation_last_seq_or_none(*, conversation_id: UUID | str) -> int | None:
    """The seq of the conversation's newest event, None if no conversation has this id (SQL: a
    socket following an open conversation reads it on every connect and resume)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT last_seq FROM conversations_conversation WHERE id = %s", [conversation_id])
        row = cursor.fetchone()
    return row[0] if row is not None else None


def conversation_assigned_to(*, conversation_id: UUID | str, agent_id: int) -> bool:
    """Whether this agent has the conversation (it is with a human, and that human is them)."""
    return Conversation.objects.filter(
        pk=conversation_id, assignee_id=agent_id, state=ConversationState.HUMAN
    ).exists()


def conversation_get_for_customer(*, customer_id: UUID | str, conversation_id: UUID | str) -> Conversation:
    """The conversation if it is this customer's; NotFound or Forbidden otherwise."""
    conversation = Conversation.objects.filter(pk=conversation_id).first()
    if conversation is None:
        raise ConversationNotFound("No conversation has this id; start a new one by sending a message.")
    if str(conversation.customer_id) != str(customer_id):
        raise ConversationForbidden("This conversation belongs to someone else.")
    return conversation


def event_list(
    *, conversation_id: UUID | str, after_seq: int, upto_seq: int | None = None
) -> list[dict[str, Any]]:
    """Durable events with `after_seq < seq [<= upto_seq]`, as the client sees them, in order,
    all in one list: for short ranges. Sockets replay through `event_page`."""
    events = ConversationEvent.objects.filter(conversation_id=conversation_id, seq__gt=after_seq)
    if upto_seq is not None:
        events = events.filter(seq__lte=upto_seq)
    return [event_to_wire(event) for event in events.order_by("seq")]


def event_page(
    *, conversation_id: UUID | str, after_seq: int, upto_seq: int | None = None, limit: int
) -> list[dict[str, Any]]:
    """The first `limit` durable events with `after_seq < seq [<= upto_seq]`, in order: one page
    of a replay (a long conversation is read a page at a time, never whole; the unique
    (conversation, seq) index makes each page one range scan)."""
    events = ConversationEvent.objects.filter(conversation_id=conversation_id, seq__gt=after_seq)
    if upto_seq is not None:
        events = events.filter(seq__lte=upto_seq)
    return [event_to_wire(event) for event in events.order_by("seq")[:limit]]


def message_history(*, conversation_id: UUID | str, limit: int = 20) -> list[Message]:
    """The newest `limit` messages, oldest first (what an answer generator reads)."""
    newest = Message.objects.filter(conversation_id=conversation_id).order_by("-created_at")[:limit]
    return list(reversed(newest))
