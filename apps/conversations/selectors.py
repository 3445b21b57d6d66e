"""Reading conversations: what a customer may see, the event log for replay, and the reads the
chat and agent sockets make (each one round trip, run through apps.core.db.db_async)."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from django.db.models import OuterRef, QuerySet, Subquery

from apps.customers.models import Customer

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


def customer_open_conversation(*, customer_id: UUID | str) -> tuple[bool, UUID | None]:
    """(the customer exists, id of their open conversation or None): the chat socket's auth,
    in one query (every socket that connects makes it)."""
    newest_open = _open_conversations(OuterRef("pk")).values("pk")[:1]
    customer = Customer.objects.filter(pk=customer_id).annotate(open_id=Subquery(newest_open))
    found = list(customer.values_list("open_id", flat=True))
    return (True, found[0]) if found else (False, None)


def conversation_last_seq(*, conversation_id: UUID | str) -> int:
    """The seq of the conversation's newest event (0 if none, or no such conversation)."""
    return conversation_last_seq_or_none(conversation_id=conversation_id) or 0


def conversation_last_seq_or_none(*, conversation_id: UUID | str) -> int | None:
    """The seq of the conversation's newest event, None if no conversation has this id."""
    return Conversation.objects.filter(pk=conversation_id).values_list("last_seq", flat=True).first()


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
