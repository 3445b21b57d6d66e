"""A customer's data as one JSON document (PROTOCOL.md §5 `customer_export`): everything Kefu
holds about them, and nothing about anyone else."""

from __future__ import annotations

import json
from typing import Any
from uuid import UUID

from django.core.serializers.json import DjangoJSONEncoder
from django.utils import timezone

from apps.connectors.models import ToolCall
from apps.console.models import Note
from apps.conversations.models import Conversation, ConversationEvent, Message
from apps.customers.models import Customer
from apps.webhooks.models import WebhookEvent


def _message(message: Message) -> dict[str, Any]:
    feedback = getattr(message, "feedback", None)
    return {
        "id": message.id,
        "seq": message.seq,
        "role": message.role,
        "text": message.text,
        "created_at": message.created_at,
        "citations": message.citations,
        "outcome": message.outcome,
        "stopped": message.stopped,
        "feedback": None
        if feedback is None
        else {
            "helpful": feedback.helpful,
            "comment": feedback.comment,
            "updated_at": feedback.updated_at,
        },
    }


def _tool_call(call: ToolCall) -> dict[str, Any]:
    return {
        "id": call.id,
        "name": call.name,
        "connector": call.connector_slug,
        "arguments": call.arguments,
        "status": call.status,
        "detail": call.detail,
        "result": call.result,
        "http_status": call.http_status,
        "error": call.error,
        "created_at": call.created_at,
        "finished_at": call.finished_at,
    }


def _conversation(conversation: Conversation) -> dict[str, Any]:
    messages = (
        Message.objects.filter(conversation=conversation).select_related("feedback").order_by("created_at")
    )
    events = ConversationEvent.objects.filter(conversation=conversation).order_by("seq")
    calls = ToolCall.objects.filter(conversation=conversation).order_by("created_at")
    notes = Note.objects.filter(conversation=conversation).order_by("created_at")
    return {
        "id": conversation.id,
        "state": conversation.state,
        "priority": conversation.priority,
        "language": conversation.language,
        "created_at": conversation.created_at,
        "updated_at": conversation.updated_at,
        "closed_at": conversation.closed_at,
        "csat": {"score": conversation.csat_score, "comment": conversation.csat_comment},
        "messages": [_message(m) for m in messages],
        "events": [
            {"seq": e.seq, "type": e.type, "payload": e.payload, "created_at": e.created_at} for e in events
        ],
        "tool_calls": [_tool_call(c) for c in calls],
        "notes": [{"id": n.id, "text": n.text, "created_at": n.created_at} for n in notes],
    }


def customer_export_document(*, customer_id: UUID | str) -> dict[str, Any]:
    """Raises Customer.DoesNotExist for an unknown (or erased) customer."""
    customer = Customer.objects.get(pk=customer_id)
    conversations = Conversation.objects.filter(customer=customer).order_by("created_at")
    webhook_events = (
        WebhookEvent.objects.filter(customer=customer).select_related("source").order_by("received_at")
    )
    document = {
        "exported_at": timezone.now(),
        "customer": {
            "id": customer.id,
            "external_id": customer.external_id,
            "name": customer.name,
            "email": customer.email,
            "email_verified": customer.email_verified,
            "created_at": customer.created_at,
            "updated_at": customer.updated_at,
        },
        "conversations": [_conversation(c) for c in conversations],
        "webhook_events": [
            {
                "id": e.pk,
                "source": e.source.slug,
                "webhook_id": e.webhook_id,
                "type": e.type,
                "data": e.data,
                "status": e.status,
                "conversation_id": e.conversation_id,
                "received_at": e.received_at,
                "processed_at": e.processed_at,
            }
            for e in webhook_events
        ],
    }
    return json.loads(json.dumps(document, cls=DjangoJSONEncoder))  # plain JSON types throughout
