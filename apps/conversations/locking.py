"""The one order in which Kefu locks rows. Every transaction takes its row locks in this order
and never comes back to an earlier kind once it holds a later one:

    webhook event → customer → conversation → auto-assign lock → turn → tool call

- A job's own row first (a webhook event being processed): nothing else locks it.
- The customer (`customer_lock`) before any of their conversations: a chat message and a CRM
  update that arrive together land in one new conversation.
- The conversation before any row that belongs to it. Whoever will touch a turn or a tool call
  takes `conversation_lock` (or `conversation_lock_for`, from the child row's id) first; the seq
  bump in `events.event_emit` then finds the lock already held. A transaction that locks no turn
  or tool call may let the seq bump be its conversation lock. One conversation per transaction.
- The advisory lock of automatic assignment (apps/console/assignment.py) is taken holding the
  conversation, before its turns are stopped.
- Turns (apps/assistant), then tool calls (apps/connectors).

Customers and conversations are locked `FOR NO KEY UPDATE`, never `FOR UPDATE`: the foreign-key
checks of rows inserted meanwhile (messages, events, turns, notes) and of a row updated twice in
one transaction (a second seq bump checks `customer_id` again) take KEY SHARE locks, which NO KEY
UPDATE does not block, so those late, implicit locks never close a cycle.

Statements that lock turns on their own, in autocommit (the runner's claim, lease renewal and
hand-back), hold nothing else while they wait, so they cannot close a cycle either.

tests/faults/test_deadlocks.py checks the order under load with Postgres's deadlock counter.
"""

from __future__ import annotations

from uuid import UUID

from django.db import connection
from django.db.models import Model

from .models import Conversation


def customer_lock(*, customer_id: UUID | str) -> bool:
    """Lock the customer's row (in the caller's transaction); False when it does not exist."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM customers_customer WHERE id = %s FOR NO KEY UPDATE", [customer_id])
        return cursor.fetchone() is not None


def conversation_lock(*, conversation_id: UUID | str) -> Conversation | None:
    """Lock the conversation's row (in the caller's transaction) and load it; None if missing."""
    return Conversation.objects.select_for_update(no_key=True).filter(pk=conversation_id).first()


def conversation_lock_for(*, model: type[Model], pk: UUID | str) -> Conversation | None:
    """Lock the conversation that a row of `model` (a turn, a tool call: any model with a
    `conversation` foreign key) belongs to, before locking that row itself. One round trip;
    None when the row does not exist. A row's conversation never changes, so finding it
    unlocked is safe."""
    table = connection.ops.quote_name(model._meta.db_table)
    found = Conversation.objects.raw(
        f"SELECT c.* FROM conversations_conversation c JOIN {table} r ON r.conversation_id = c.id "  # noqa: S608 - a model's table
        "WHERE r.id = %s FOR NO KEY UPDATE OF c",
        [pk],
    )
    return next(iter(found), None)
