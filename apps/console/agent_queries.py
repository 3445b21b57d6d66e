"""What the agent socket reads that is the console's own: its queue (console read marks),
a subscription's notes, and the answer being generated. Reads of conversations themselves
are conversations' selectors (apps/conversations/selectors.py)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from apps.conversations.models import Conversation

from . import auth
from .selectors import note_list, note_to_wire, queue_wire
from .visibility import Viewer, viewer_for

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Replay:
    # The customer-visible events up to last_seq are read a page at a time by the consumer.
    last_seq: int  # the conversation's last seq when read (later events arrive live)
    notes: list[dict[str, Any]]  # every note, oldest first


def ready_for(*, user: Any) -> tuple[Viewer, list[dict[str, Any]]]:
    """What the socket checks entries against, and the `agent_ready` queue it may see."""
    viewer = viewer_for(user=user)
    return viewer, queue_wire(viewer=viewer)


def agent_current(*, session_key: str | None, agent_id: int) -> tuple[Any, Viewer] | None:
    """The heartbeat's account re-check, with the agent's teams and role as they are now."""
    user = auth.console_user_current(session_key=session_key, agent_id=agent_id)
    return None if user is None else (user, viewer_for(user=user))


def subscribe_replay(*, conversation_id: UUID | str, viewer: Viewer) -> Replay | None:
    """None: no such conversation, or one of another team (the same answer: `not_found`)."""
    last_seq = (
        Conversation.objects.filter(viewer.q(), pk=conversation_id).values_list("last_seq", flat=True).first()
    )
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
