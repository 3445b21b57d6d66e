"""Removing personal data while keeping conversations as anonymous statistics.

What counts as personal data here: the customer's name, e-mail and external id, and every free
text a conversation holds, whoever wrote it (the customer's messages, the assistant's and agents'
answers, which quote orders and addresses; notes; CSAT and feedback comments), tool calls'
arguments, results, details and errors, CRM webhook payloads about the customer, the payloads of
Kefu's outgoing webhooks about their conversations and what subscribers answered, the admin
history's names for them, and the audit log's copies of the same. Texts become "[erased]".

What stays, so the reports' totals do not change: every row (conversations, messages, events,
tool calls, feedback), their counts, timestamps, seqs, states, roles, outcomes, citations (help
center articles), tool names and statuses, CSAT scores and thumbs up/down.

A customer erased on request is replaced by a fresh anonymous customer row holding their
conversations, and their own row is deleted: the widget token they hold names no one any more.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from uuid import UUID

from django.contrib.admin.models import LogEntry
from django.contrib.contenttypes.models import ContentType
from django.db import connection
from django.db.models import Q

from apps.audit.services import audit_conversations_redact, audit_customer_redact
from apps.connectors.models import ToolCall
from apps.console.models import Note
from apps.conversations.models import Conversation, ConversationEvent, Message, MessageFeedback
from apps.customers.models import Customer
from apps.webhooks.models import EventDeliveryAttempt, EventPayload, WebhookEvent

from .models import AnonymisedConversation

ERASED = "[erased]"


def _erased(value: Any) -> Any:
    return ERASED if value else value


def _event_payload(kind: str, payload: dict[str, Any]) -> dict[str, Any]:
    """A durable event with its free texts erased; its shape (what clients parse) kept."""
    payload = dict(payload)
    if kind == "message" and isinstance(payload.get("message"), dict):
        payload["message"] = {**payload["message"], "text": _erased(payload["message"].get("text"))}
    elif kind == "message_end":
        payload["text"] = _erased(payload.get("text"))
    elif kind == "tool":
        payload["detail"] = _erased(payload.get("detail"))
    elif kind == "update":
        payload.update(title=_erased(payload.get("title")), body=_erased(payload.get("body")), data={})
    return payload


def conversations_anonymise(*, conversation_ids: Iterable[UUID | str], reason: str) -> int:
    """Erase the personal data of these conversations (the caller's transaction, conversations
    locked by the caller). Idempotent."""
    ids = [str(i) for i in conversation_ids]
    if not ids:
        return 0
    Message.objects.filter(conversation_id__in=ids).exclude(text="").update(text=ERASED)
    MessageFeedback.objects.filter(message__conversation_id__in=ids).exclude(comment="").update(
        comment=ERASED
    )
    Conversation.objects.filter(pk__in=ids).exclude(csat_comment="").update(csat_comment=ERASED)
    Note.objects.filter(conversation_id__in=ids).update(text=ERASED)
    for event in ConversationEvent.objects.filter(
        conversation_id__in=ids, type__in=("message", "message_end", "tool", "update")
    ):
        event.payload = _event_payload(event.type, event.payload)
        event.save(update_fields=["payload"])
    for call in ToolCall.objects.filter(conversation_id__in=ids):
        call.arguments = {key: ERASED for key in call.arguments or {}}
        call.result = None if call.result is None else {"erased": True}
        call.detail, call.error = _erased(call.detail), _erased(call.error)
        call.save(update_fields=["arguments", "result", "detail", "error", "updated_at"])
    WebhookEvent.objects.filter(conversation_id__in=ids).update(data={"erased": True}, error="")
    payloads = EventPayload.objects.filter(payload__data__conversation_id__in=ids)
    _outgoing_erase(payloads)
    audit_conversations_redact(conversation_ids=ids)
    AnonymisedConversation.objects.bulk_create(
        [AnonymisedConversation(conversation_id=i, reason=reason) for i in ids], ignore_conflicts=True
    )
    return len(ids)


def _outgoing_erase(payloads: Any) -> None:
    for payload in payloads:
        data = payload.payload.get("data") or {}
        kept = {k: data[k] for k in ("conversation_id",) if k in data}
        payload.payload = {**payload.payload, "data": {**kept, "erased": True}}
        payload.save(update_fields=["payload"])
    EventDeliveryAttempt.objects.filter(delivery__payload__in=payloads).update(response_body="", error="")


def customer_identity_erase(*, customer: Customer) -> Customer:
    """Move the customer's conversations and matched CRM events to a new anonymous customer,
    scrub what still names them, and delete their row. Returns the placeholder."""
    placeholder = Customer.objects.create()
    Conversation.objects.filter(customer=customer).update(customer=placeholder)
    matched = WebhookEvent.objects.filter(customer=customer)
    matched.update(customer=placeholder, data={"erased": True}, error="")
    # Events that arrived before the customer existed (unmatched) may still name them.
    needles = [v for v in (customer.external_id, customer.email) if v]
    if needles:
        unmatched = Q()
        for needle in needles:
            unmatched |= Q(pk__in=_json_mentions(WebhookEvent, "data", needle))
        WebhookEvent.objects.filter(unmatched).update(data={"erased": True}, error="")
    _outgoing_erase(EventPayload.objects.filter(payload__data__customer_id=str(customer.pk)))
    customer_type = ContentType.objects.get_for_model(Customer)
    LogEntry.objects.filter(content_type=customer_type, object_id=str(customer.pk)).update(
        object_repr="erased customer", change_message=""
    )
    audit_customer_redact(customer_id=customer.pk)
    Customer.objects.filter(pk=customer.pk).delete()
    return placeholder


def _json_mentions(model: Any, column: str, needle: str) -> list[Any]:
    table = model._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT id FROM {table} WHERE {column}::text ILIKE %s",  # noqa: S608 (model's own names)
            ["%" + needle.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"],
        )
        return [row[0] for row in cursor.fetchall()]
