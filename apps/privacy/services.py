"""A customer's data on request (PROTOCOL.md §5): export and erase, both audited. The console's
buttons and the management commands call these."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from uuid import UUID

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

from apps.audit.services import audit_record
from apps.conversations.events import customer_group
from apps.conversations.models import Conversation
from apps.customers.models import Customer

from .erasure import conversations_anonymise, customer_identity_erase
from .export import customer_export_document


class CustomerUnknown(Exception):
    """No customer has this id (or they were erased already)."""


@dataclass(frozen=True)
class Erased:
    customer_id: str
    placeholder_id: str  # the anonymous customer now holding the conversations
    conversations: int


def _command_label(actor: Any, actor_label: str | None) -> str | None:
    return actor_label if actor is None else None


def customer_export(*, customer_id: UUID | str, actor: Any = None, actor_label: str | None = None) -> dict:
    """Everything Kefu holds about the customer as one JSON document; the export is audited
    (actor None: a command, named by actor_label)."""
    with transaction.atomic():
        try:
            document = customer_export_document(customer_id=customer_id)
        except (Customer.DoesNotExist, ValueError):
            raise CustomerUnknown(f"No customer has the id {customer_id}.") from None
        audit_record(
            actor=actor,
            actor_label=_command_label(actor, actor_label),
            action="customer.export",
            target=("customers.customer", customer_id),
            detail={"conversations": len(document["conversations"])},
        )
    return document


def _sockets_close(customer_id: str) -> None:
    """Every open chat socket of the customer closes (4401): see ChatConsumer.customer_erased."""
    async_to_sync(get_channel_layer().group_send)(customer_group(customer_id), {"type": "customer.erased"})


@transaction.atomic
def customer_erase(*, customer_id: UUID | str, actor: Any = None, actor_label: str | None = None) -> Erased:
    """Remove the customer's personal data everywhere and keep their conversations as anonymous
    statistics (erasure.py says what is removed and what stays); audited; their sockets close."""
    try:
        # Customer first, then conversations (apps/conversations/locking.py's order).
        customer = Customer.objects.select_for_update().get(pk=customer_id)
    except (Customer.DoesNotExist, ValueError):
        raise CustomerUnknown(f"No customer has the id {customer_id}.") from None
    ids = list(
        Conversation.objects.select_for_update(no_key=True)
        .filter(customer=customer)
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    conversations_anonymise(conversation_ids=ids, reason="erasure")
    placeholder = customer_identity_erase(customer=customer)
    erased = Erased(str(customer_id), str(placeholder.pk), len(ids))
    audit_record(
        actor=actor,
        actor_label=_command_label(actor, actor_label),
        action="customer.erase",
        target=("customers.customer", customer_id),
        detail={"conversations": len(ids), "placeholder_customer_id": erased.placeholder_id},
    )
    transaction.on_commit(lambda: _sockets_close(erased.customer_id), robust=True)
    return erased
