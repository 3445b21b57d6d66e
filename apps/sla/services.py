"""SLA clocks: started when a conversation enters the agents' queue, stopped by the first agent
reply (first response) and by closing (resolution), marked breached once when overdue.

Starts and stops run inside the transaction of the state change they follow (a rollback takes
them back): conversations' own state changes call `sla_state_changed` through the handler
registered in apps.py; the console's calls these functions directly.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any
from uuid import UUID

from django.db import connection, transaction
from django.utils import timezone

from apps.conversations.models import Conversation, ConversationState
from apps.conversations.publisher import Published, publisher

from .business_time import business_add
from .models import ClockKind, SlaClock
from .selectors import sla_calendar, sla_policy_for

logger = logging.getLogger(__name__)


@transaction.atomic(savepoint=False)  # in the caller's transaction: its rollback takes the clocks back
def sla_clocks_start(*, conversation: Conversation, at: datetime | None = None) -> list[SlaClock]:
    """Start the conversation's clocks by its policy, due in business time. A clock that runs
    or has breached is kept; one stopped in time (the conversation went back to the assistant,
    or was answered before) starts again: a new request for a person is owed a new answer."""
    at = at or timezone.now()
    policy = sla_policy_for(team_id=conversation.team_id, priority=conversation.priority)
    if policy is None:
        return []
    targets = {ClockKind.FIRST_RESPONSE: policy.first_response_s, ClockKind.RESOLUTION: policy.resolution_s}
    targets = {kind: s for kind, s in targets.items() if s is not None}
    if not targets:
        return []
    team = conversation.team if conversation.team_id is not None else None
    calendar = sla_calendar(team_id=conversation.team_id, time_zone=team.time_zone if team else None)
    existing = {c.kind: c for c in SlaClock.objects.select_for_update().filter(conversation=conversation)}
    started = []
    for kind, seconds in targets.items():
        due_at = business_add(start=at, seconds=seconds, calendar=calendar)
        clock = existing.get(kind)
        if clock is None:
            clock = SlaClock.objects.create(
                conversation=conversation, kind=kind, started_at=at, due_at=due_at
            )
        elif clock.stopped_at is not None and clock.breached_at is None:
            clock.started_at, clock.due_at, clock.stopped_at = at, due_at, None
            clock.save(update_fields=["started_at", "due_at", "stopped_at"])
        else:
            continue
        started.append(clock)
    return started


def sla_clocks_stop(
    *, conversation_id: UUID | str, kinds: tuple[str, ...] = tuple(ClockKind), at: datetime | None = None
) -> int:
    """Stop the running clocks of these kinds (a breached one too: it stays breached)."""
    return SlaClock.objects.filter(
        conversation_id=conversation_id, kind__in=kinds, stopped_at__isnull=True
    ).update(stopped_at=at or timezone.now())


def sla_state_changed(*, conversation: Conversation) -> None:
    """The handler of conversations' state changes (in their transaction)."""
    if conversation.state == ConversationState.WAITING:
        sla_clocks_start(conversation=conversation)
    elif conversation.state == ConversationState.CLOSED:
        sla_clocks_stop(conversation_id=conversation.pk)


_BREACH_SQL = f"""
UPDATE {SlaClock._meta.db_table} AS clock SET breached_at = %s
FROM {Conversation._meta.db_table} AS conv
WHERE clock.conversation_id = conv.id AND clock.due_at <= %s
  AND clock.stopped_at IS NULL AND clock.breached_at IS NULL
RETURNING clock.conversation_id, conv.customer_id, clock.kind, clock.due_at
"""


@transaction.atomic
def sla_breaches_mark(*, now: datetime | None = None) -> list[dict[str, Any]]:
    """Mark every overdue running clock breached, exactly once (the WHERE on `breached_at`
    makes a second sweep, or a concurrent one, find nothing), and publish `sla_breach` on
    commit: the agents hear of it, the queue entry turns red, subscribers get `sla.breached`."""
    now = now or timezone.now()
    with connection.cursor() as cursor:
        cursor.execute(_BREACH_SQL, [now, now])
        rows = cursor.fetchall()
    events = []
    for conversation_id, customer_id, kind, due_at in rows:
        wire = {
            "type": "sla_breach", "conversation_id": str(conversation_id), "kind": kind,
            "due_at": due_at.isoformat(),
        }
        publisher().publish(Published(str(conversation_id), str(customer_id), wire))
        events.append(wire)
    if events:
        logger.info("sla: %d clocks breached", len(events))
    return events
