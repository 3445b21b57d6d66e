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
import time
from typing import Any
from uuid import UUID

from django.conf import settings

from apps.conversations.audiences import AGENTS_GROUP
from apps.conversations.publisher import Published, publisher
from apps.core.redis import redis_sync
from apps.core.runtime import runtime

from .selectors import queue_entry_get, queue_entry_to_wire

logger = logging.getLogger(__name__)


def queue_entry_event(*, conversation_id: UUID | str) -> dict[str, Any] | None:
    conversation = queue_entry_get(conversation_id=conversation_id)
    if conversation is None:
        return None
    return {"type": "conversation", "conversation": queue_entry_to_wire(conversation)}


class AgentsOnline:
    """Whether any console socket, in any process, listens to the queue: the `agents` channel
    group has a member that has not expired. Building an entry is the costliest step of a
    customer message's after-work (bench/ws_sessions.py), and a console that connects later
    reads the whole queue from Postgres (`agent_ready`), so no one misses an entry skipped
    while nobody listened. "Yes" is kept for a second; "no" is asked again each time."""

    KEEP_S = 1.0

    def __init__(self) -> None:
        self.yes_until = 0.0

    def __call__(self) -> bool:
        if time.monotonic() < self.yes_until:
            return True
        config = settings.CHANNEL_LAYERS["default"].get("CONFIG", {})
        key = f"{config.get('prefix', 'asgi')}:group:{AGENTS_GROUP}"  # channels-redis's own key
        try:
            members = redis_sync().zcount(key, time.time() - config.get("group_expiry", 86400), "+inf")
        except Exception:  # Redis away: build the entries, as if someone listened
            logger.warning("could not tell whether agents are online", exc_info=True)
            return True
        if members:
            self.yes_until = time.monotonic() + self.KEEP_S
        return bool(members)


def agents_online() -> bool:
    return runtime().get("console.agents_online", AgentsOnline)()


def queue_entries(batch: list[Published]) -> list[Published]:
    """The QUEUE listener: one current entry per conversation of the batch, when any console
    listens (AgentsOnline). Never raises."""
    if not agents_online():
        return []
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
