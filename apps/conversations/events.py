"""The one gate for conversation events (CONVENTIONS.md "One gate for realtime events").

Durable events (`message`, `message_end`, `tool`, `handoff`, `update`, `csat_request`) go
through `event_emit`: it takes the conversation's next `seq` and stores the event in the
caller's transaction, and broadcasts it to the conversation's group only after that
transaction commits, so nobody ever sees an event that a rollback takes back. Live-only
events (`token`, `partial`, `typing`) go through `event_broadcast` / `aevent_broadcast`.
Nothing else calls `group_send` for conversation events.

What a socket receives from the group is `{"type": "conv.event", "event": <wire event>,
"meta": {...}}`; the wire event is exactly what PROTOCOL.md §2 shows the client, `meta` holds
server-only hints (a token's character offset, the origin of a typing indicator).

    with transaction.atomic():
        ...change state...
        event_emit(conversation=conversation, type="handoff", payload={"state": "waiting", "agent": None})
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
from collections.abc import Iterator
from typing import Any
from uuid import UUID

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import connection, transaction

from .models import Conversation, ConversationEvent

logger = logging.getLogger(__name__)

DURABLE_TYPES = frozenset({"message", "message_end", "tool", "handoff", "update", "csat_request"})
LIVE_TYPES = frozenset({"token", "partial", "typing"})
# The channel-layer message type every conversation event travels as (handler `conv_event`).
LAYER_TYPE = "conv.event"


# Set by `broadcasts_deferred`: committed events wait here instead of being sent at once.
_deferred: contextvars.ContextVar[list[tuple[str, dict[str, Any]]] | None] = contextvars.ContextVar(
    "kefu_deferred_broadcasts", default=None
)


@contextlib.contextmanager
def broadcasts_deferred() -> Iterator[list[tuple[str, dict[str, Any]]]]:
    """Collect the broadcasts of events committed inside the block instead of sending them.

    For sync code that an async caller runs in a thread (a consumer's `database_sync_to_async`):
    the caller answers its client first, then sends the collected events with
    `abroadcast_deferred`. Without this, each commit waits for its own Redis round trip.
    """
    pending: list[tuple[str, dict[str, Any]]] = []
    token = _deferred.set(pending)
    try:
        yield pending
    finally:
        _deferred.reset(token)


async def abroadcast_deferred(pending: list[tuple[str, dict[str, Any]]]) -> None:
    """Send what `broadcasts_deferred` collected, in commit order."""
    for conversation_id, wire in pending:
        try:
            await _group_send(conversation_id, wire, {})
        except Exception:
            logger.exception("broadcast of %s to conversation %s failed", wire.get("type"), conversation_id)


def conversation_group(conversation_id: UUID | str) -> str:
    """The channel-layer group of a conversation's sockets: `conv.<uuid>`."""
    return f"conv.{conversation_id}"


def event_to_wire(event: ConversationEvent) -> dict[str, Any]:
    """The client's view of a stored event: `type`, `conversation_id`, `seq`, then the payload."""
    return {
        "type": event.type,
        "conversation_id": str(event.conversation_id),
        "seq": event.seq,
        **event.payload,
    }


def _next_seq(conversation_id: UUID | str) -> int:
    # The UPDATE holds the row lock until commit: writers in any process take turns, and a
    # rollback returns the number, so seqs stay gap-free and unique.
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE conversations_conversation SET last_seq = last_seq + 1, updated_at = now() "
            "WHERE id = %s RETURNING last_seq",
            [conversation_id],
        )
        row = cursor.fetchone()
    if row is None:
        raise Conversation.DoesNotExist(f"conversation {conversation_id} does not exist")
    return row[0]


def event_emit(
    *, conversation: Conversation | UUID | str, type: str, payload: dict[str, Any]
) -> ConversationEvent:
    """Store a durable event with the conversation's next `seq`; broadcast it on commit.

    Joins the caller's transaction (or makes its own). `payload` holds the event's fields
    other than `type`, `conversation_id` and `seq`, and must be JSON-serialisable.
    Returns the stored event (`.seq` is the number the client will see).
    """
    if type not in DURABLE_TYPES:
        raise ValueError(f"{type!r} is not a durable event type; use event_broadcast for live events")
    conversation_id = conversation.pk if isinstance(conversation, Conversation) else conversation
    with transaction.atomic(savepoint=False):
        seq = _next_seq(conversation_id)
        event = ConversationEvent.objects.create(
            conversation_id=conversation_id, seq=seq, type=type, payload=payload
        )
        if isinstance(conversation, Conversation):
            conversation.last_seq = seq
        wire = event_to_wire(event)
        pending = _deferred.get()
        if pending is not None:
            transaction.on_commit(lambda: pending.append((str(conversation_id), wire)), robust=True)
        else:
            transaction.on_commit(lambda: _group_send_sync(conversation_id, wire, {}), robust=True)
    return event


def event_broadcast(
    *, conversation_id: UUID | str, type: str, payload: dict[str, Any], meta: dict[str, Any] | None = None
) -> None:
    """Send a live-only event (`token`, `partial`, `typing`) to the conversation's sockets now."""
    _group_send_sync(conversation_id, _live_wire(conversation_id, type, payload), meta or {})


async def aevent_broadcast(
    *, conversation_id: UUID | str, type: str, payload: dict[str, Any], meta: dict[str, Any] | None = None
) -> None:
    """`event_broadcast` for async callers (consumers, the turn runner)."""
    await _group_send(conversation_id, _live_wire(conversation_id, type, payload), meta or {})


def _live_wire(conversation_id: UUID | str, type: str, payload: dict[str, Any]) -> dict[str, Any]:
    if type not in LIVE_TYPES:
        raise ValueError(f"{type!r} is not a live event type; durable events go through event_emit")
    return {"type": type, "conversation_id": str(conversation_id), **payload}


async def _group_send(conversation_id: UUID | str, wire: dict[str, Any], meta: dict[str, Any]) -> None:
    layer = get_channel_layer()
    await layer.group_send(
        conversation_group(conversation_id), {"type": LAYER_TYPE, "event": wire, "meta": meta}
    )


def _group_send_sync(conversation_id: UUID | str, wire: dict[str, Any], meta: dict[str, Any]) -> None:
    # A lost broadcast loses nothing: the event is in Postgres, and sockets fill gaps from there.
    try:
        async_to_sync(_group_send)(conversation_id, wire, meta)
    except Exception:
        logger.exception("broadcast of %s to conversation %s failed", wire.get("type"), conversation_id)
