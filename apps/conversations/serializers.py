"""How conversation objects look on the wire (PROTOCOL.md §2)."""

from __future__ import annotations

from typing import Any

from .models import Message, MessageFeedback


def message_to_wire(message: Message) -> dict[str, Any]:
    """`{id, role, text, created_at, citations, author}`; `author` is an agent's display name."""
    author = None
    if message.author_id is not None:
        user = message.author
        author = user.get_full_name() or user.get_username()
    return {
        "id": str(message.id),
        "role": message.role,
        "text": message.text,
        "created_at": message.created_at.isoformat(),
        "citations": message.citations,
        "author": author,
    }


def feedback_to_wire(feedback: MessageFeedback, *, conversation_id: str) -> dict[str, Any]:
    """The console's live `feedback` event (PROTOCOL.md §3): the customer's verdict on one answer."""
    return {
        "type": "feedback",
        "conversation_id": conversation_id,
        "message_id": str(feedback.message_id),
        "helpful": feedback.helpful,
        "comment": feedback.comment,
        "updated_at": feedback.updated_at.isoformat(),
    }
