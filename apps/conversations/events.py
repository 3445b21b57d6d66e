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

import asyncio
import contextlib
import contextvars
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import connection, transaction

from apps.core.redis import redis_async, redis_key

from .models import Conversation, ConversationEvent

logger = logging.getLogger(__name__)

DURABLE_TYPES = frozenset({"message", "message_end", "tool", "handoff", "update", "csat_request"})
LIVE_TYPES = frozenset({"token", "partial", "typing"})
# The channel-layer message type every conversation event travels as (handler `conv_event`).
LAYER_TYPE = "conv.event"


_background: set[asyncio.Task] = set()

# Set by `broadcasts_deferred`: committed events wait here instead of being sent at once.
_deferred: contextvars.ContextVar[list[Published] | None] = contextvars.ContextVar(
    "kefu_deferred_broadcasts", default=None
)


@contextlib.contextmanager
def broadcasts_deferred() -> Iterator[list[Published]]:
    """Collect the broadcasts of events committed inside the block instead of sending them.

    For sync code that an async caller runs in a thread (a consumer's `database_sync_to_async`):
    the caller answers its client first, then sends the collected events with
    `abroadcast_deferred`. Without this, each commit waits for its own Redis round trip.
    """
    pending: list[Published] = []
    token = _deferred.set(pending)
    try:
        yield pending
    finally:
        _deferred.reset(token)


async def abroadcast_deferred(pending: list[Published]) -> None:
    """Send what `broadcasts_deferred` collected, in commit order."""
    for published in pending:
        try:
            await _publish(published)
        except Exception:
            logger.exception("broadcast of %s failed", published.wire.get("type"))
    if pending:  # the agents' queue and webhooks need not hold up the caller (an ack, an answer)
        from apps.core.db import db_async_work

        task = asyncio.get_running_loop().create_task(db_async_work(_after_publish)(pending=list(pending)))
        _background.add(task)
        task.add_done_callback(_background.discard)


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


def customer_group(customer_id: UUID | str) -> str:
    """Every chat socket of a customer (`cust.<uuid>`): told when a conversation of theirs starts."""
    return f"cust.{customer_id}"


# The newest seq of each conversation, kept in Redis so a socket can tell it missed an event
# (a dropped broadcast) with one cheap read instead of a query per check (delivery gap repair).
SEQ_TTL_S = 86400
_SEQ_MAX = """
local cur = tonumber(redis.call('GET', KEYS[1]) or '0')
if tonumber(ARGV[1]) > cur then redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2]) end
return 1
"""


def seq_key(conversation_id: UUID | str) -> str:
    return redis_key("conv", conversation_id, "seq")


# The seq bump and the event insert in one round trip. The UPDATE holds the conversation's row
# lock until commit: writers in any process take turns, and a rollback returns the number, so
# seqs stay gap-free and unique.
_EMIT = """
WITH bumped AS (
  UPDATE conversations_conversation SET last_seq = last_seq + 1, updated_at = now()
   WHERE id = %(conversation_id)s RETURNING id, last_seq, customer_id
)
INSERT INTO conversations_conversationevent (conversation_id, seq, type, payload, created_at)
SELECT id, last_seq, %(type)s, %(payload)s::jsonb, now() FROM bumped
RETURNING id, seq, created_at, (SELECT customer_id FROM bumped)
"""


def _event_insert(
    conversation_id: UUID | str, type: str, payload: dict[str, Any]
) -> tuple[ConversationEvent, str]:
    with connection.cursor() as cursor:
        cursor.execute(
            _EMIT, {"conversation_id": conversation_id, "type": type, "payload": json.dumps(payload)}
        )
        row = cursor.fetchone()
    if row is None:
        raise Conversation.DoesNotExist(f"conversation {conversation_id} does not exist")
    event_id, seq, created_at, customer_id = row
    event = ConversationEvent(
        id=event_id, conversation_id=conversation_id, seq=seq, type=type, payload=payload,
        created_at=created_at,
    )
    event._state.adding, event._state.db = False, connection.alias
    return event, str(customer_id)


@dataclass(frozen=True)
class Published:
    """A committed durable event on its way out: to its sockets, agents and subscribers."""

    conversation_id: str
    customer_id: str
    wire: dict[str, Any]


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
        event, customer_id = _event_insert(conversation_id, type, payload)
        if isinstance(conversation, Conversation):
            conversation.last_seq = event.seq
        published = Published(str(conversation_id), customer_id, event_to_wire(event))
        pending = _deferred.get()
        if pending is not None:
            transaction.on_commit(lambda: pending.append(published), robust=True)
        else:
            transaction.on_commit(lambda: _publish_sync(published), robust=True)
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


async def _publish(published: Published) -> None:
    """The socket side of a committed durable event: its seq mark, then its sockets."""
    wire = published.wire
    await redis_async().eval(_SEQ_MAX, 1, seq_key(published.conversation_id), wire["seq"], SEQ_TTL_S)
    await _group_send(published.conversation_id, wire, {})
    if wire["seq"] == 1:  # a new conversation: every socket of the customer follows it
        await get_channel_layer().group_send(
            customer_group(published.customer_id),
            {"type": "conv.started", "conversation_id": published.conversation_id},
        )


def _publish_sync(published: Published) -> None:
    # A lost broadcast loses nothing: the event is in Postgres, and sockets fill gaps from there.
    try:
        async_to_sync(_publish)(published)
    except Exception:
        logger.exception("broadcast of %s failed", published.wire.get("type"))
    _after_publish(pending=[published])


# Event types that change what the agents' queue shows of a conversation (its state, last
# message, unread count, waiting time); `message_end` and `tool` do not.
_QUEUE_TYPES = frozenset({"message", "handoff", "update", "csat_request"})


def _after_publish(*, pending: list[Published]) -> None:
    """Who else hears of committed events: the agents' queue (one entry per conversation of
    the batch, for events that change it) and outgoing webhooks (every event)."""
    queue, outgoing = _listeners()
    changed = dict.fromkeys(p.conversation_id for p in pending if p.wire["type"] in _QUEUE_TYPES)
    for conversation_id in changed:
        _safely(queue, conversation_id=conversation_id)
    for published in pending:
        _safely(outgoing, wire=published.wire, customer_id=published.customer_id)


def _safely(listener: Any, **kwargs: Any) -> None:
    try:
        listener(**kwargs)
    except Exception:
        logger.exception("listener %s failed", getattr(listener, "__name__", listener))


def _listeners() -> tuple[Any, Any]:
    # Imported late: those apps build on this one.
    from apps.console.queue import queue_entry_publish
    from apps.webhooks.outgoing import outgoing_durable_event

    return queue_entry_publish, outgoing_durable_event


def _group_send_sync(conversation_id: UUID | str, wire: dict[str, Any], meta: dict[str, Any]) -> None:
    # A lost broadcast loses nothing: the event is in Postgres, and sockets fill gaps from there.
    try:
        async_to_sync(_group_send)(conversation_id, wire, meta)
    except Exception:
        logger.exception("broadcast of %s to conversation %s failed", wire.get("type"), conversation_id)
