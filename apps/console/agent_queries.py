"""What the agent socket reads that is the console's own: its queue (console read marks),
a subscription's notes, and the answer being generated. Reads of conversations themselves
are conversations' selectors (apps/conversations/selectors.py)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from apps.conversations.selectors import conversation_last_seq_or_none

from .selectors import note_list, note_to_wire, queue_wire

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Replay:
    # The customer-visible events up to last_seq are read a page at a time by the consumer.
    last_seq: int  # the conversation's last seq when read (later events arrive live)
    notes: list[dict[str, Any]]  # every note, oldest first


def queue_for(*, agent_id: int) -> list[dict[str, Any]]:
    return queue_wire(agent_id=agent_id)


def subscribe_replay(*, conversation_id: UUID | str) -> Replay | None:
    last_seq = conversation_last_seq_or_none(conversation_id=conversation_id)
    if last_seq is None:
        return None
    notes = [note_to_wire(note) for note in note_list(conversation_id=conversation_id)]
    return Replay(last_seq, notes)


async def answer_partial(*, conversation_id: UUID | str) -> tuple[str, str] | None:
    """(message_id, text so far) of an answer being generated, as a resuming customer gets it."""
    try:
        from apps.assistant import live_state

        return await live_state.partial_get(conversation_id)
    except Exception:
        logger.exception("partial answer of %s not read", conversation_id)
        return None
