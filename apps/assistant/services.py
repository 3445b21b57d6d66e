"""What the turn runner reads from and writes to Postgres."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from django.db import transaction

from apps.conversations.events import event_emit
from apps.conversations.models import Conversation, ConversationState, Message, MessageRole
from apps.conversations.selectors import message_history
from apps.conversations.services import message_create

from .providers import Turn


def turn_context(*, conversation_id: UUID | str) -> Turn | None:
    """The question to answer now: the newest customer message, if the assistant has the
    conversation and has not answered it yet."""
    state = Conversation.objects.filter(pk=conversation_id).values_list("state", flat=True).first()
    if state != ConversationState.BOT:
        return None
    history = message_history(conversation_id=conversation_id, limit=20)
    if not history or history[-1].role != MessageRole.CUSTOMER:
        return None
    return Turn(
        conversation_id=str(conversation_id),
        question=history[-1].text,
        history=[{"role": m.role, "text": m.text} for m in history[:-1]],
    )


@transaction.atomic
def answer_store(
    *,
    conversation_id: UUID | str,
    message_id: UUID | str,
    text: str,
    citations: list[dict[str, Any]],
    stopped: bool,
    started_at: datetime,
) -> Message:
    """End an answer: the assistant `message` (seq n), then `message_end` (seq n + 1).

    The message is dated when the answer started, so a customer message sent while it
    streamed is newer than it and gets its own answer (see `turn_context`).
    """
    conversation = Conversation.objects.get(pk=conversation_id)
    message = message_create(
        conversation=conversation,
        role=MessageRole.ASSISTANT,
        text=text,
        citations=citations,
        message_id=UUID(str(message_id)),
        stopped=stopped,
        created_at=started_at,
    )
    event_emit(
        conversation=conversation,
        type="message_end",
        payload={"message_id": str(message.id), "text": text, "citations": citations, "stopped": stopped},
    )
    return message
