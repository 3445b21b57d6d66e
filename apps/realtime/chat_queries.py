"""The chat socket's one write that spans two apps (run via apps.core.db.db_async). Its reads
are conversations' selectors (apps/conversations/selectors.py)."""

from __future__ import annotations

from typing import Any

from django.db import transaction

from apps.assistant.turn_store import turn_create
from apps.conversations.events import Published, broadcasts_deferred
from apps.conversations.services import MessageReceipt, message_receive_in


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
