"""Who receives each event type: the one audience table (DESIGN.md "One way out for events").

Like Chatwoot's ActionCable listener, the audience of an event is decided here, by its type,
and nowhere else: a caller publishes an event and cannot address it. A note or a presence
update has no customer audience in this table, so no caller can leak one to a customer socket
by forgetting a filter.

Audiences:
- CONVERSATION: the conversation's sockets, `conv.<id>` — the customer's chat sockets and the
  agents who subscribed to it (they see what the customer sees, with the same `seq`).
- NEW_CONVERSATION: every chat socket of the customer, `cust.<customer id>`, told to follow a
  conversation that just started (its first durable event, `seq` 1).
- CONVERSATION_AGENTS: the agents who have the conversation open, `agents.conv.<id>`; never a
  customer.
- AGENTS: every console socket, `agents` (the queue's entries). One send per change; each
  socket passes on only what its agent may see (their teams', PROTOCOL.md §3), checked against
  the entry's `team` and `assignee` without a query (apps/console/visibility.py).
- QUEUE: the conversation's queue entry changes; the registered queue listener (the console)
  rebuilds it after commit and it goes to AGENTS as a `conversation` event.
- WEBHOOKS: outgoing webhooks; the registered listener (the webhooks app) decides which
  outgoing event types an event stands for.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any
from uuid import UUID


class Audience(StrEnum):
    CONVERSATION = "conversation"
    NEW_CONVERSATION = "new_conversation"
    CONVERSATION_AGENTS = "conversation_agents"
    AGENTS = "agents"
    QUEUE = "queue"
    WEBHOOKS = "webhooks"


# Kinds of conversation events (PROTOCOL.md §2): durable ones are stored with a `seq`.
DURABLE_TYPES = frozenset({"message", "message_end", "tool", "handoff", "update", "csat_request"})
LIVE_TYPES = frozenset({"token", "partial", "typing"})

A = Audience
_CUSTOMER_VISIBLE = frozenset({A.CONVERSATION, A.WEBHOOKS})
_QUEUED = _CUSTOMER_VISIBLE | {A.QUEUE}

AUDIENCES: dict[str, frozenset[Audience]] = {
    # Durable customer events: their sockets, subscribers; those that change what the queue
    # shows (state, last message, unread, waiting time) also the queue. `seq` 1 adds
    # NEW_CONVERSATION (audiences_for).
    "message": _QUEUED,
    "handoff": _QUEUED,
    "update": _QUEUED,
    "csat_request": _QUEUED,
    "message_end": _CUSTOMER_VISIBLE,
    "tool": _CUSTOMER_VISIBLE,
    # Live customer events: the sockets only, never stored, never a webhook.
    "token": frozenset({A.CONVERSATION}),
    "partial": frozenset({A.CONVERSATION}),
    "typing": frozenset({A.CONVERSATION}),
    # Agent-only events (PROTOCOL.md §3).
    "note": frozenset({A.CONVERSATION_AGENTS}),
    # A customer's thumbs up/down on an answer: not a customer event (no seq); the agents who
    # have the conversation open see it live, subscribers get `feedback.received`.
    "feedback": frozenset({A.CONVERSATION_AGENTS, A.WEBHOOKS}),
    "presence": frozenset({A.CONVERSATION_AGENTS}),
    "conversation": frozenset({A.AGENTS}),  # a queue entry, built by the queue listener
    # Changes no socket sees as such: the queue entry changes alone (assignment, unread count),
    # a customer's rating (the queue shows it; subscribers get `csat.received`).
    "queue_change": frozenset({A.QUEUE}),
    "csat_received": frozenset({A.QUEUE, A.WEBHOOKS}),
    # An SLA clock ran out (apps/sla): every console hears it, the entry turns red, subscribers
    # get `sla.breached`.
    "sla_breach": frozenset({A.AGENTS, A.QUEUE, A.WEBHOOKS}),
}

# Audiences reached through a channel-layer group (the others are registered listeners).
GROUP_AUDIENCES = (A.CONVERSATION, A.NEW_CONVERSATION, A.CONVERSATION_AGENTS, A.AGENTS)
LISTENER_AUDIENCES = (A.QUEUE, A.WEBHOOKS)

# Channel-layer message types, one per consumer handler (`conv.event` → `conv_event`).
CONV_EVENT = "conv.event"
CONV_STARTED = "conv.started"
CONSOLE_EVENT = "console.event"
AGENTS_GROUP = "agents"


def audiences_for(wire: dict[str, Any]) -> frozenset[Audience]:
    """The audiences of one event; an unknown type has none (and is refused by the publisher)."""
    audiences = AUDIENCES.get(wire.get("type"), frozenset())
    if wire.get("seq") == 1 and wire["type"] in DURABLE_TYPES:
        return audiences | {A.NEW_CONVERSATION}
    return audiences


def conversation_group(conversation_id: UUID | str) -> str:
    """The channel-layer group of a conversation's sockets: `conv.<uuid>`."""
    return f"conv.{conversation_id}"


def customer_group(customer_id: UUID | str) -> str:
    """Every chat socket of a customer (`cust.<uuid>`): told when a conversation of theirs starts."""
    return f"cust.{customer_id}"


def agents_conversation_group(conversation_id: UUID | str) -> str:
    """Agents who have a conversation open: its notes and presence."""
    return f"agents.conv.{conversation_id}"


def group_messages(
    audiences: frozenset[Audience],
    *,
    wire: dict[str, Any],
    conversation_id: str,
    customer_id: str | None,
    meta: dict[str, Any],
) -> list[tuple[str, dict[str, Any]]]:
    """(group, channel-layer message) for each group audience, in a fixed order: the
    conversation's sockets hear of an event before the customer's other tabs are told to follow it."""
    console = {"type": CONSOLE_EVENT, "event": wire}
    messages = []
    for audience in GROUP_AUDIENCES:
        if audience not in audiences:
            continue
        if audience is A.CONVERSATION:
            message = {"type": CONV_EVENT, "event": wire, "meta": meta}
            messages.append((conversation_group(conversation_id), message))
        elif audience is A.NEW_CONVERSATION and customer_id is not None:
            message = {"type": CONV_STARTED, "conversation_id": conversation_id}
            messages.append((customer_group(customer_id), message))
        elif audience is A.CONVERSATION_AGENTS:
            messages.append((agents_conversation_group(conversation_id), console))
        elif audience is A.AGENTS:
            messages.append((AGENTS_GROUP, console))
    return messages
