"""The gate for conversation events (CONVENTIONS.md "One gate for realtime events").

Durable events (`message`, `message_end`, `tool`, `handoff`, `update`, `csat_request`) go
through `event_emit`: it takes the conversation's next `seq` and stores the event in the
caller's transaction, and hands it to the publisher (publisher.py) to leave only after that
transaction commits, so nobody ever sees an event that a rollback takes back. Live-only
events (`token`, `partial`, `typing`) go through `event_broadcast` / `aevent_broadcast`.
Who receives each event is decided by audiences.py, nowhere else.

What a socket receives from the group is `{"type": "conv.event", "event": <wire event>,
"meta": {...}}`; the wire event is exactly what PROTOCOL.md §2 shows the client, `meta` holds
server-only hints (a token's character offset, the origin of a typing indicator).

    with transaction.atomic():
        ...change state...
        event_emit(conversation=conversation, type="handoff", payload={"state": "waiting", "agent": None})
"""

from __future__ import annotations

import json
from typing import Any
from uuid import UUID

from django.db import connection, transaction
from django.db.models import Model

from .audiences import DURABLE_TYPES, LIVE_TYPES, conversation_group, customer_group
from .models import Conversation, ConversationEvent
from .publisher import (
    _SEQ_MAX,
    SEQ_TTL_S,
    Published,
    abroadcast_collected,
    abroadcast_deferred,
    broadcasts_deferred,
    deferred_with_listeners,
    publisher,
    seq_key,
    with_broadcasts_deferred,
)

__all__ = [
    "DURABLE_TYPES",
    "LAYER_TYPE",
    "LIVE_TYPES",
    "SEQ_TTL_S",
    "_SEQ_MAX",
    "Published",
    "abroadcast_collected",
    "abroadcast_deferred",
    "aevent_broadcast",
    "broadcasts_deferred",
    "deferred_with_listeners",
    "conversation_group",
    "customer_group",
    "event_broadcast",
    "event_emit",
    "event_to_wire",
    "seq_key",
    "with_broadcasts_deferred",
]

# The channel-layer message type every conversation event travels as (handler `conv_event`).
LAYER_TYPE = "conv.event"


def event_to_wire(event: ConversationEvent) -> dict[str, Any]:
    """The client's view of a stored event: `type`, `conversation_id`, `seq`, then the payload."""
    return {
        "type": event.type,
        "conversation_id": str(event.conversation_id),
        "seq": event.seq,
        **event.payload,
    }


# The seq bump and the event insert in one round trip. The UPDATE holds the conversation's row
# lock until commit: writers in any process take turns, and a rollback returns the number, so
# seqs stay gap-free and unique. A caller that holds a turn or tool call lock has taken the
# conversation's lock before it (apps/conversations/locking.py): here it is already held.
# `{row}` is empty, or the insert of a row that carries the event's seq (a message), so that it
# costs no round trip of its own either.
_EMIT = """
WITH bumped AS (
  UPDATE conversations_conversation SET last_seq = last_seq + 1, updated_at = now()
   WHERE id = %s RETURNING id, last_seq, customer_id
), emitted AS (
  INSERT INTO conversations_conversationevent (conversation_id, seq, type, payload, created_at)
  SELECT id, last_seq, %s, %s::jsonb, now() FROM bumped
  RETURNING id, seq, created_at
){row}
SELECT id, seq, created_at, (SELECT customer_id FROM bumped) FROM emitted
"""
_ROW = """, stored AS (
  INSERT INTO {table} ({columns}, seq) SELECT {values}, last_seq FROM bumped RETURNING 1
)"""


def _row_insert(row: Model) -> tuple[str, list[Any]]:
    """The `stored` CTE inserting `row` (an unsaved instance whose model has a `seq` field) with
    its fields' database values, as Model.save() would prepare them."""
    fields = [f for f in type(row)._meta.concrete_fields if f.column != "seq"]
    quote = connection.ops.quote_name
    sql = _ROW.format(
        table=quote(type(row)._meta.db_table),
        columns=", ".join(quote(f.column) for f in fields),
        values=", ".join(["%s"] * len(fields)),
    )
    return sql, [f.get_db_prep_save(f.pre_save(row, add=True), connection) for f in fields]


def _event_insert(
    conversation_id: UUID | str, type: str, payload: dict[str, Any], row: Model | None
) -> tuple[ConversationEvent, str]:
    row_sql, row_params = _row_insert(row) if row is not None else ("", [])
    with connection.cursor() as cursor:
        cursor.execute(
            _EMIT.format(row=row_sql), [conversation_id, type, json.dumps(payload), *row_params]
        )
        found = cursor.fetchone()
    if found is None:
        raise Conversation.DoesNotExist(f"conversation {conversation_id} does not exist")
    event_id, seq, created_at, customer_id = found
    event = ConversationEvent(
        id=event_id, conversation_id=conversation_id, seq=seq, type=type, payload=payload,
        created_at=created_at,
    )
    event._state.adding, event._state.db = False, connection.alias
    if row is not None:
        row.seq = seq
        row._state.adding, row._state.db = False, connection.alias
    return event, str(customer_id)


def event_emit(
    *, conversation: Conversation | UUID | str, type: str, payload: dict[str, Any],
    row: Model | None = None,
) -> ConversationEvent:
    """Store a durable event with the conversation's next `seq`; publish it on commit.

    Joins the caller's transaction (or makes its own). `payload` holds the event's fields
    other than `type`, `conversation_id` and `seq`, and must be JSON-serialisable. `row`, an
    unsaved instance of a model with a `seq` field (the message the event announces), is
    inserted in the same statement with that seq.
    Returns the stored event (`.seq` is the number the client will see).
    """
    if type not in DURABLE_TYPES:
        raise ValueError(f"{type!r} is not a durable event type; use event_broadcast for live events")
    conversation_id = conversation.pk if isinstance(conversation, Conversation) else conversation
    with transaction.atomic(savepoint=False):
        event, customer_id = _event_insert(conversation_id, type, payload, row)
        if isinstance(conversation, Conversation):
            conversation.last_seq = event.seq
        publisher().publish(Published(str(conversation_id), customer_id, event_to_wire(event)))
    return event


def event_broadcast(
    *, conversation_id: UUID | str, type: str, payload: dict[str, Any], meta: dict[str, Any] | None = None
) -> None:
    """Send a live-only event (`token`, `partial`, `typing`) to the conversation's sockets now."""
    publisher().deliver([_live(conversation_id, type, payload, meta)])


async def aevent_broadcast(
    *, conversation_id: UUID | str, type: str, payload: dict[str, Any], meta: dict[str, Any] | None = None
) -> None:
    """`event_broadcast` for async callers (consumers, the turn runner)."""
    await publisher().apublish(_live(conversation_id, type, payload, meta))


def _live(
    conversation_id: UUID | str, type: str, payload: dict[str, Any], meta: dict[str, Any] | None
) -> Published:
    if type not in LIVE_TYPES:
        raise ValueError(f"{type!r} is not a live event type; durable events go through event_emit")
    wire = {"type": type, "conversation_id": str(conversation_id), **payload}
    return Published(str(conversation_id), None, wire, meta or {})
