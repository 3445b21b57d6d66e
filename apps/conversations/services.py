"""Changing conversations. Every state change that the customer or an agent must see emits
its durable event through apps/conversations/events.py in the same transaction."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID, uuid4

from django.db import transaction
from django.utils import timezone

from apps.customers.models import Customer

from .errors import ConversationConflict, ConversationForbidden, ConversationNotFound
from .events import event_emit
from .models import Conversation, ConversationState, Message, MessageRole
from .serializers import message_to_wire

CSAT_QUESTION = "How did we do? Rate this conversation from 1 to 5."


@dataclass(frozen=True)
class MessageReceipt:
    """What `message_receive` did: the stored message and whether an answer is due."""

    message: Message
    conversation: Conversation
    created: bool  # False: a retry of a message stored before (same client_msg_id)
    answer_due: bool  # the conversation is the assistant's and this message is new


@transaction.atomic(savepoint=False)  # a failed insert fails the caller's transaction anyway
def message_create(
    *,
    conversation: Conversation,
    role: str,
    text: str,
    citations: list[dict[str, Any]] | None = None,
    author_id: int | None = None,
    client_msg_id: UUID | None = None,
    message_id: UUID | None = None,
    stopped: bool = False,
    created_at: datetime | None = None,
) -> Message:
    """Store a message and emit its durable `message` event; `message.seq` is that event's seq."""
    message = Message(
        id=message_id or uuid4(),
        conversation=conversation,
        role=role,
        text=text,
        citations=citations or [],
        author_id=author_id,
        client_msg_id=client_msg_id,
        stopped=stopped,
        created_at=created_at or timezone.now(),
    )
    event = event_emit(
        conversation=conversation, type="message", payload={"message": message_to_wire(message)}
    )
    message.seq = event.seq
    message.save(force_insert=True)
    return message


@transaction.atomic
def message_receive(
    *,
    customer_id: UUID | str,
    client_msg_id: UUID,
    text: str,
    conversation_id: UUID | None = None,
    new_conversation_id: UUID | None = None,
) -> MessageReceipt:
    """A customer's message, idempotent on `client_msg_id` across all their conversations.

    Without `conversation_id` (or when it names a closed conversation) the message goes to the
    customer's open conversation, or to a new one with id `new_conversation_id`.
    """
    # One writer per customer at a time: a retry racing its original finds the stored copy,
    # and two first messages from two tabs land in one new conversation, not two.
    customer = Customer.objects.select_for_update().filter(pk=customer_id).first()
    if customer is None:
        raise ConversationNotFound("This customer no longer exists; start a new session.")
    existing = (
        Message.objects.select_related("conversation")
        .filter(conversation__customer_id=customer_id, client_msg_id=client_msg_id)
        .first()
    )
    if existing is not None:
        if conversation_id is not None and existing.conversation_id != conversation_id:
            raise ConversationConflict("This client_msg_id was already used in another conversation.")
        return MessageReceipt(existing, existing.conversation, created=False, answer_due=False)

    conversation = None
    if conversation_id is not None:
        conversation = Conversation.objects.filter(pk=conversation_id).first()
        if conversation is None:
            raise ConversationNotFound(
                "No conversation has this id; send the message without conversation_id."
            )
        if conversation.customer_id != customer.pk:
            raise ConversationForbidden("This conversation belongs to someone else.")
        if conversation.state == ConversationState.CLOSED:
            conversation = None
    if conversation is None:
        conversation = (
            Conversation.objects.filter(customer=customer)
            .exclude(state=ConversationState.CLOSED)
            .order_by("-created_at")
            .first()
        )
    if conversation is None:
        conversation = Conversation.objects.create(id=new_conversation_id or uuid4(), customer=customer)
    message = message_create(
        conversation=conversation, role=MessageRole.CUSTOMER, text=text, client_msg_id=client_msg_id
    )
    return MessageReceipt(
        message, conversation, created=True, answer_due=conversation.state == ConversationState.BOT
    )


@transaction.atomic
def conversation_request_human(*, conversation_id: UUID | str) -> Conversation:
    """Hand a conversation from the assistant to the agents' queue (`waiting` + `handoff`).

    Asking again while waiting for or talking to an agent changes nothing and emits nothing.
    """
    conversation = Conversation.objects.select_for_update().get(pk=conversation_id)
    if conversation.state == ConversationState.CLOSED:
        raise ConversationConflict("This conversation is closed; send a message to start a new one.")
    if conversation.state == ConversationState.BOT:
        conversation.state = ConversationState.WAITING
        conversation.save(update_fields=["state", "updated_at"])
        event_emit(conversation=conversation, type="handoff", payload={"state": "waiting", "agent": None})
    return conversation


@transaction.atomic
def conversation_close(*, conversation_id: UUID | str, question: str = CSAT_QUESTION) -> Conversation:
    """Close a conversation and ask the customer for a rating (`csat_request`)."""
    conversation = Conversation.objects.select_for_update().get(pk=conversation_id)
    if conversation.state != ConversationState.CLOSED:
        conversation.state = ConversationState.CLOSED
        conversation.closed_at = timezone.now()
        conversation.save(update_fields=["state", "closed_at", "updated_at"])
        event_emit(conversation=conversation, type="csat_request", payload={"question": question})
    return conversation


@transaction.atomic
def conversation_rate(*, conversation_id: UUID | str, score: int, comment: str = "") -> Conversation:
    """Record the customer's answer to a `csat_request`; a later answer replaces an earlier one."""
    conversation = Conversation.objects.select_for_update().get(pk=conversation_id)
    if conversation.state != ConversationState.CLOSED:
        raise ConversationConflict(
            "Ratings are asked for when a conversation closes; this one is still open."
        )
    conversation.csat_score = score
    conversation.csat_comment = comment
    conversation.save(update_fields=["csat_score", "csat_comment", "updated_at"])
    return conversation
