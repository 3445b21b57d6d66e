"""A customer with something in every table that can hold their data, and another customer
whose data must stay out of their export and survive their erasure."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import pytest
from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.contenttypes.models import ContentType

from apps.audit.services import audit_record, audit_tool_call
from apps.connectors.models import ToolCall
from apps.console.models import Note
from apps.conversations.events import event_emit
from apps.conversations.models import Conversation, MessageFeedback
from apps.conversations.services import message_create
from apps.customers.models import Customer
from apps.webhooks.models import EventPayload, WebhookEvent, WebhookSource
from tests.support.people import make_user


@dataclass
class Person:
    customer: Customer
    conversation: Conversation
    name: str
    email: str
    external_id: str


def seed(name: str, email: str, external_id: str, source: WebhookSource, admin: Any) -> Person:
    customer = Customer.objects.create(name=name, email=email, external_id=external_id, email_verified=True)
    conversation = Conversation.objects.create(customer=customer)
    message_create(
        conversation=conversation,
        role="customer",
        text=f"Hi, I am {name}, write to {email}",
        client_msg_id=uuid.uuid4(),
    )
    answer = message_create(conversation=conversation, role="assistant", text=f"Hello {name}!")
    MessageFeedback.objects.create(message=answer, helpful=False, comment=f"{name} says: not helpful")
    call = ToolCall.objects.create(
        conversation=conversation,
        name="order_status",
        connector_slug="demo-crm",
        arguments={"email": email},
        status="succeeded",
        idempotency_key=f"k-{uuid.uuid4()}",
        detail=f"Looking up {name}'s order",
        result={"customer": external_id},
        http_status=200,
    )
    audit_tool_call(call=call)
    Note.objects.create(conversation=conversation, text=f"{name} called twice")
    event_emit(
        conversation=conversation,
        type="update",
        payload={"kind": "order", "title": f"Order of {name}", "body": "Shipped", "data": {"to": email}},
    )
    WebhookEvent.objects.create(
        source=source,
        webhook_id=f"msg_{uuid.uuid4().hex}",
        type="order.shipped",
        status="processed",
        data={"customer": {"external_id": external_id, "email": email}},
        customer=customer,
        conversation=conversation,
    )
    EventPayload.objects.create(
        event_type="message.created",
        payload={
            "type": "message.created",
            "data": {
                "customer_id": str(customer.pk),
                "conversation_id": str(conversation.pk),
                "text": f"from {name}",
            },
        },
    )
    Conversation.objects.filter(pk=conversation.pk).update(
        state="closed", csat_score=4, csat_comment=f"Thanks, {name}"
    )
    LogEntry.objects.create(
        content_type=ContentType.objects.get_for_model(Customer),
        object_id=str(customer.pk),
        object_repr=str(customer),
        action_flag=CHANGE,
        change_message="[]",
        user=admin,
    )
    audit_record(
        actor=None,
        action="customers.customer.change",
        target=customer,
        before={"name": ""},
        after={"name": name},
        customer_id=customer.pk,
    )
    conversation.refresh_from_db()
    return Person(customer, conversation, name, email, external_id)


@pytest.fixture
def people(transactional_db) -> tuple[Person, Person]:
    source = WebhookSource.objects.create(slug="test-crm", name="Test CRM")
    admin = make_user("root@example.com", "Root", "Admin")
    zoe = seed("Zoe Quistgaard", "zoe.q@erase.example", "crm-erase-7731", source, admin)
    keep = seed("Grete Keepwell", "grete@keep.example", "crm-keep-2210", source, admin)
    return zoe, keep
