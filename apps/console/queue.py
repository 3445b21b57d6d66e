"""The live queue: every change of a conversation reaches every open console as a
`conversation` entry (PROTOCOL.md §3).

The event gate (apps/conversations/events.py) calls `queue_entry_publish` after the commit of
every durable conversation event; console services call it for changes that emit none
(assignment, unread counts).
"""

from __future__ import annotations

import logging
from typing import Any
from uuid import UUID

from django.db import transaction

from .groups import AGENTS, agroup_send, group_send
from .selectors import queue_entry_get, queue_entry_to_wire

logger = logging.getLogger(__name__)


def queue_entry_event(*, conversation_id: UUID | str) -> dict[str, Any] | None:
    conversation = queue_entry_get(conversation_id=conversation_id)
    if conversation is None:
        return None
    return {"type": "conversation", "conversation": queue_entry_to_wire(conversation)}


def queue_entry_publish(*, conversation_id: UUID | str) -> None:
    """Send the conversation's current queue entry to every agent. Never raises."""
    try:
        event = queue_entry_event(conversation_id=conversation_id)
        if event is not None:
            group_send(AGENTS, event)
        _auto_assign(conversation_id, event)
    except Exception:
        logger.exception("queue entry of conversation %s not published", conversation_id)


def queue_entry_publish_on_commit(*, conversation_id: UUID | str) -> None:
    transaction.on_commit(lambda: queue_entry_publish(conversation_id=conversation_id), robust=True)


async def aqueue_entry_send(event: dict[str, Any]) -> None:
    await agroup_send(AGENTS, event)


def _auto_assign(conversation_id: UUID | str, event: dict[str, Any] | None) -> None:
    # Waiting and unassigned: offer it to the next online agent (when the option is on).
    if event is None:
        return
    entry = event["conversation"]
    if entry["state"] != "waiting" or entry["assignee"] is not None:
        return
    from .assignment import auto_assign

    auto_assign(conversation_id=conversation_id)
