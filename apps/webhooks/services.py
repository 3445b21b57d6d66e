"""Incoming webhooks: store what was accepted, then turn it into a customer's `update` event."""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from uuid import uuid4

from django.db import DataError, connection, transaction
from django.utils import timezone

from apps.conversations.events import event_emit
from apps.conversations.models import Conversation
from apps.conversations.selectors import conversation_open_for_customer
from apps.customers.models import Customer

from .models import Verifier, WebhookEvent, WebhookEventStatus, WebhookSource
from .rendering import render_update
from .selectors import webhook_source_get
from .verifiers import Incoming, PayloadInvalid, Request, verify

logger = logging.getLogger(__name__)

DEMO_SOURCE_SLUG = "demo-crm"


@dataclass(frozen=True)
class Stored:
    event_id: int | None  # None: a duplicate of an event stored before
    duplicate: bool


def webhook_source_ensure(
    *, slug: str, secrets: list[str], verifier: str = Verifier.STANDARD, name: str = ""
) -> WebhookSource:
    """The source with this slug, created or updated so that `secrets` verify (idempotent).

    Secrets added in the admin beside these are kept, so a rotation in progress survives."""
    source, _ = WebhookSource.objects.get_or_create(
        slug=slug, defaults={"verifier": verifier, "secrets": list(secrets), "name": name}
    )
    missing = [s for s in secrets if s not in source.secrets]
    if missing or source.verifier != verifier:
        source.secrets = [*missing, *source.secrets]
        source.verifier = verifier
        source.save(update_fields=["secrets", "verifier"])
    return source


def webhook_source_demo_ensure() -> WebhookSource:
    """The demo CRM's source, `demo-crm`, verifying DEMO_WEBHOOK_SECRET (PROTOCOL.md §6)."""
    from django.conf import settings

    return webhook_source_ensure(
        slug=DEMO_SOURCE_SLUG, secrets=[settings.DEMO_WEBHOOK_SECRET], name="Demo CRM/ERP"
    )


# One round trip: a duplicate webhook-id inserts nothing and returns no row.
_INSERT = """
INSERT INTO webhooks_webhookevent
  (source_id, webhook_id, type, data, status, attempts, error, received_at)
VALUES (%s, %s, %s, %s, 'received', 0, '', now())
ON CONFLICT (source_id, webhook_id) DO NOTHING
RETURNING id
"""


def webhook_event_store(*, source: WebhookSource, incoming: Incoming) -> Stored:
    """Store an accepted event durably (unique per source and webhook id) and queue its processing."""
    from django.db.models import JSONField

    from .tasks import webhook_event_process_task

    data = JSONField().get_db_prep_value(incoming.data, connection)
    # One statement, committed on its own (autocommit): no BEGIN/COMMIT round trips on the
    # intake's hot path. Inside a caller's transaction, a savepoint keeps a refused row from
    # breaking it.
    guard = transaction.atomic() if connection.in_atomic_block else contextlib.nullcontext()
    try:
        with guard, connection.cursor() as cursor:
            cursor.execute(_INSERT, [source.pk, incoming.webhook_id, incoming.type, data])
            row = cursor.fetchone()
    except DataError as exc:  # e.g. "\u0000" in a string: valid JSON that jsonb cannot hold
        raise PayloadInvalid("the JSON holds a value Postgres cannot store (such as \\u0000)") from exc
    if row is None:
        return Stored(event_id=None, duplicate=True)
    event_id = row[0]
    # robust: the event is stored either way; a lost enqueue is found again by the sweep
    transaction.on_commit(lambda: webhook_event_process_task.delay(event_id), robust=True)
    return Stored(event_id=event_id, duplicate=False)


def webhook_events_stale(*, older_than_s: float = 60, limit: int = 500) -> list[int]:
    """Events still `received` a while after they came in: their task was lost (Redis was down
    when it was queued, or a worker died holding it)."""
    cutoff = timezone.now() - timedelta(seconds=older_than_s)
    stale = WebhookEvent.objects.filter(status=WebhookEventStatus.RECEIVED, received_at__lt=cutoff)
    return list(stale.order_by("received_at").values_list("pk", flat=True)[:limit])


class UnknownConnector(Exception):
    """No enabled source has this slug (404)."""


def webhook_receive(*, slug: str, request: Request) -> Stored:
    """The intake: find the source, verify the request with its scheme and secrets, store it.

    Raises UnknownConnector, SignatureInvalid or PayloadInvalid (apps/webhooks/verifiers.py)."""
    source = webhook_source_get(slug=slug)
    if source is None:
        raise UnknownConnector(slug)
    incoming = verify(verifier=source.verifier, secrets=source.secrets, request=request)
    return webhook_event_store(source=source, incoming=incoming)


def customer_for_event(*, data: Any, lock: bool = False) -> Customer | None:
    """The customer an event is about, by an identity that was proved: the external id (the host
    site's user id, proved by user_hash or a signed JWT), else an e-mail, but only among
    customers whose e-mail is verified. A visitor who typed an address proves nothing, so an
    event about it stays unmatched. With `lock`, the row is locked (as message_receive locks it)
    in the same query."""
    # NO KEY UPDATE, as customer_lock takes it (apps/conversations/locking.py): FOR UPDATE would
    # block the KEY SHARE that an answer's second seq bump takes on the customer, holding the
    # conversation this transaction waits for: a deadlock.
    customers = Customer.objects.select_for_update(no_key=True) if lock else Customer.objects.all()
    external_ids, emails = _identities(data)
    for external_id in external_ids:
        customer = customers.filter(external_id=external_id).first()
        if customer is not None:
            return customer
    for email in emails:
        customer = (
            customers.filter(email__iexact=email, email_verified=True).order_by("-updated_at").first()
        )
        if customer is not None:
            return customer
    return None


_IDENTITY_OBJECTS = ("customer", "contact", "user", "requester", "detail")


def _identities(data: Any) -> tuple[list[str], list[str]]:
    if not isinstance(data, dict):
        return [], []
    places = [data.get(key) for key in _IDENTITY_OBJECTS if isinstance(data.get(key), dict)]
    places.append(data)
    external_ids = [str(p["external_id"]) for p in places if p.get("external_id")]
    if isinstance(data.get("customer"), str | int) and data["customer"]:
        external_ids.append(str(data["customer"]))  # Stripe: "customer": "cus_..."
    emails = [str(p[k]) for p in places for k in ("email", "customer_email") if p.get(k)]
    return external_ids, emails


@transaction.atomic
def webhook_event_process(*, event_id: int) -> WebhookEvent | None:
    """Turn a stored event into an `update` in the customer's open (or a new) conversation.

    Exactly once: the event row is locked for the whole transaction, so a second worker (or a
    redelivered task) waits, then finds it processed. Locks in the one order
    (apps/conversations/locking.py): the event, the customer, then (by the seq bump) the
    conversation. An event about no known customer is kept as `unmatched`; re-processing it
    later (admin action) matches again.
    """
    event = WebhookEvent.objects.select_for_update().select_related("source").filter(pk=event_id).first()
    if event is None or event.status == WebhookEventStatus.PROCESSED:
        return event  # None: deleted in the admin since it was queued
    event.attempts += 1
    # The customer's row lock, as message_receive takes it: a chat message and an update
    # arriving together land in one new conversation, never two.
    customer = customer_for_event(data=event.data, lock=True)
    if customer is None:
        event.status = WebhookEventStatus.UNMATCHED
        event.error = "No customer has this external_id or e-mail."
        event.save(update_fields=["status", "error", "attempts"])
        return event
    conversation = conversation_open_for_customer(customer_id=customer.pk) or Conversation.objects.create(
        id=uuid4(), customer_id=customer.pk
    )
    # Only the fields the source's template allows: the payload may hold addresses, order lines.
    title, body, data = render_update(type=event.type, data=event.data, overrides=event.source.templates)
    emitted = event_emit(
        conversation=conversation,
        type="update",
        payload={"kind": event.type, "title": title, "body": body, "data": data},
    )
    event.status = WebhookEventStatus.PROCESSED
    event.customer, event.conversation, event.seq = customer, conversation, emitted.seq
    event.error, event.processed_at = "", timezone.now()
    event.save(
        update_fields=["status", "customer", "conversation", "seq", "error", "processed_at", "attempts"]
    )
    return event


def webhook_event_mark_failed(*, event_id: int, error: str) -> None:
    WebhookEvent.objects.filter(pk=event_id).exclude(status=WebhookEventStatus.PROCESSED).update(
        status=WebhookEventStatus.FAILED, error=error[:2000]
    )


def webhook_events_reprocess(*, event_ids: list[int]) -> int:
    """Queue events that are not processed yet for another try (admin action)."""
    from .tasks import webhook_event_process_task

    pending = list(
        WebhookEvent.objects.filter(pk__in=event_ids)
        .exclude(status=WebhookEventStatus.PROCESSED)
        .values_list("pk", flat=True)
    )
    for pk in pending:
        transaction.on_commit(lambda pk=pk: webhook_event_process_task.delay(pk))
    return len(pending)
