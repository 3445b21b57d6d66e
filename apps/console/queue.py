"""The live queue: every change of a conversation reaches every open console as a
`conversation` entry (PROTOCOL.md §3).

The console listens to the publisher's QUEUE audience (registered in apps.py): after each
commit that changes what the queue shows of a conversation (apps/conversations/audiences.py),
`queue_entries` builds the conversation's current entry once and the publisher sends it to
the agents. Console changes that emit no customer event (assignment, unread counts) call
`queue_entry_publish_on_commit`.
"""

from __future__ import annotations

import logging
from typing import Any
from uuid import UUID

from apps.conversations.publisher import Published, publisher

from .selectors import queue_entry_get, queue_entry_to_wire

logger = logging.getLogger(__name__)


def queue_entry_event(*, conversation_id: UUID | str) -> dict[str, Any] | None:
    conversation = queue_entry_get(conversation_id=conversation_id)
    if conversation is None:
        return None
    return {"type": "conversation", "conversation": queue_entry_to_wire(conversation)}


def queue_entries(batch: list[Published]) -> list[Published]:
    """The QUEUE listener: one current entry per conversation of the batch. Never raises."""
    entries = []
    for conversation_id in dict.fromkeys(item.conversation_id for item in batch):
        try:
            event = queue_entry_event(conversation_id=conversation_id)
        except Exception:
            logger.exception("queue entry of conversation %s not built", conversation_id)
            continue
        if event is not None:
            entries.append(Published(conversation_id, None, event))
    return entries


def queue_entry_publish(*, conversation_id: UUID | str, **extra: Any) -> None:
    """Send the conversation's current queue entry to every agent now (`extra` joins the
    entry: a benchmark's marker). Never raises."""
    try:
        event = queue_entry_event(conversation_id=conversation_id)
    except Exception:
        logger.exception("queue entry of conversation %s not built", conversation_id)
        return
    if event is not None:
        event["conversation"].update(extra)
        publisher().deliver([Published(str(conversation_id), None, event)])


def queue_entry_publish_on_commit(*, conversation_id: UUID | str) -> None:
    """The entry changed without a customer event: rebuilt after commit, once per transaction."""
    wire = {"type": "queue_change", "conversation_id": str(conversation_id)}
    publisher().publish(Published(str(conversation_id), None, wire))
