"""Database work the chat consumer needs, each one round trip (run via apps.core.db.db_async)."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from django.db import transaction

from apps.assistant.turn_store import turn_create
from apps.conversations.events import Published, broadcasts_deferred
from apps.conversations.models import Conversation
from apps.conversations.selectors import conversation_open_for_customer
from apps.conversations.services import MessageReceipt, message_receive_in
from apps.customers.models import Customer


def customer_open_conversation(*, customer_id: UUID) -> tuple[bool, UUID | None]:
    """(the customer exists, id of their open conversation or None)."""
    if not Customer.objects.filter(pk=customer_id).exists():
        return False, None
    conversation = conversation_open_for_customer(customer_id=customer_id)
    return True, conversation.pk if conversation else None


def conversation_last_seq(*, conversation_id: UUID) -> int:
    return Conversation.objects.filter(pk=conversation_id).values_list("last_seq", flat=True).first() or 0


def message_receive_deferred(**kwargs: Any) -> tuple[MessageReceipt, list[Published]]:
    """`message_receive_in`, and the answer it makes due, in one transaction (a crash after the
    ack cannot lose the answer). Keeps the committed events for the consumer to broadcast
    after the `ack`: the customer's ack does not wait for the channel layer."""
    with broadcasts_deferred() as pending:
        with transaction.atomic():
            receipt = message_receive_in(**kwargs)
            if receipt.answer_due:
                turn_create(conversation_id=receipt.conversation.pk, trigger_message_id=receipt.message.pk)
    return receipt, pending
