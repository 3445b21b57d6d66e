"""Channel-layer groups the console owns, and the one way to send to them.

Agent-only events (queue entries, notes, presence) travel in these groups, never in a
conversation's `conv.<id>` group, so no customer socket can receive them. Every message has
type `console.event` (consumer handler `console_event`) and carries the wire event as is.
"""

from __future__ import annotations

import logging
from typing import Any
from uuid import UUID

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

logger = logging.getLogger(__name__)

AGENTS = "agents"
LAYER_TYPE = "console.event"


def agents_conversation_group(conversation_id: UUID | str) -> str:
    """Agents who have a conversation open: its notes and presence."""
    return f"agents.conv.{conversation_id}"


async def agroup_send(group: str, event: dict[str, Any]) -> None:
    await get_channel_layer().group_send(group, {"type": LAYER_TYPE, "event": event})


def group_send(group: str, event: dict[str, Any]) -> None:
    """From sync code; a lost broadcast is logged, never raised (agents resync on reconnect)."""
    try:
        async_to_sync(agroup_send)(group, event)
    except Exception:
        logger.exception("console broadcast of %s to %s failed", event.get("type"), group)
