"""Retention: audit rows older than AUDIT_RETENTION_DAYS go; conversations older than
CONVERSATION_RETENTION_DAYS are anonymised (rows, counts, states and scores kept); customers
past it are erased; 0 keeps conversations."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from apps.audit.models import AuditEntry
from apps.conversations.models import Conversation, Message
from apps.customers.models import Customer
from apps.privacy.retention import retention_run

pytestmark = pytest.mark.django_db(transaction=True)


def age(person, days: int) -> None:  # noqa: ANN001
    past = timezone.now() - timedelta(days=days)
    Conversation.objects.filter(pk=person.conversation.pk).update(created_at=past, updated_at=past)
    Customer.objects.filter(pk=person.customer.pk).update(created_at=past, updated_at=past)


def test_old_conversations_are_anonymised_and_old_audit_rows_deleted(people, settings) -> None:
    zoe, keep = people
    age(zoe, 100)
    AuditEntry.objects.bulk_create([AuditEntry(action="ancient", at=timezone.now() - timedelta(days=40))])
    messages = Message.objects.count()

    settings.CONVERSATION_RETENTION_DAYS = 0
    settings.AUDIT_RETENTION_DAYS = 30
    assert retention_run().__dict__ == {
        "audit_deleted": 1,
        "conversations_anonymised": 0,
        "customers_erased": 0,
    }
    assert Customer.objects.filter(pk=zoe.customer.pk).exists()

    settings.CONVERSATION_RETENTION_DAYS = 90
    run = retention_run()
    assert (run.conversations_anonymised, run.customers_erased) == (1, 1)
    assert set(Message.objects.filter(conversation=zoe.conversation).values_list("text", flat=True)) == {
        "[erased]"
    }
    assert not Customer.objects.filter(pk=zoe.customer.pk).exists()
    assert Message.objects.count() == messages
    old = Conversation.objects.get(pk=zoe.conversation.pk)
    assert (old.state, old.csat_score, old.csat_comment) == ("closed", 4, "[erased]")
    assert Message.objects.filter(conversation=keep.conversation, text__contains=keep.name).count() == 2
    assert retention_run().__dict__ == {
        "audit_deleted": 0,
        "conversations_anonymised": 0,
        "customers_erased": 0,
    }
