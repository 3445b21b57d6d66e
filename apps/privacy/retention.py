"""Retention (run hourly by Celery beat, `privacy-retention`): audit rows older than
AUDIT_RETENTION_DAYS are deleted; conversations older than CONVERSATION_RETENTION_DAYS are
anonymised by the erasure routine, and a customer whose every conversation is past it (and who
has not been seen since) is erased like on request. 0 keeps everything of that kind."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Exists, Max, OuterRef, Q
from django.utils import timezone

from apps.audit.services import audit_entries_purge, audit_record
from apps.conversations.models import Conversation
from apps.customers.models import Customer

from .erasure import conversations_anonymise
from .models import AnonymisedConversation
from .services import customer_erase

BATCH = 200
LABEL = "retention job"


@dataclass(frozen=True)
class RetentionRun:
    audit_deleted: int
    conversations_anonymised: int
    customers_erased: int


def _conversations_batch(cutoff: datetime) -> int:
    with transaction.atomic():
        done = AnonymisedConversation.objects.filter(conversation=OuterRef("pk"))
        ids = list(
            Conversation.objects.select_for_update(no_key=True, skip_locked=True)
            .filter(created_at__lt=cutoff, updated_at__lt=cutoff)
            .filter(~Exists(done))
            .order_by("pk")
            .values_list("pk", flat=True)[:BATCH]
        )
        return conversations_anonymise(conversation_ids=ids, reason="retention")


def _customers_past(cutoff: datetime) -> list[str]:
    return [
        # Only customers with an identity left: anonymous ones (placeholders too) hold nothing more.
        str(pk)
        for pk in Customer.objects.filter(updated_at__lt=cutoff, created_at__lt=cutoff)
        .filter(Q(external_id__isnull=False) | ~Q(name="") | ~Q(email=""))
        .annotate(newest=Max("conversations__updated_at"))
        .filter(Q(newest__lt=cutoff) | Q(newest__isnull=True))
        .values_list("pk", flat=True)[:BATCH]
    ]


def retention_run(*, now: datetime | None = None) -> RetentionRun:
    now = now or timezone.now()
    deleted = anonymised = erased = 0
    if settings.AUDIT_RETENTION_DAYS > 0:
        deleted = audit_entries_purge(older_than=now - timedelta(days=settings.AUDIT_RETENTION_DAYS))
    if settings.CONVERSATION_RETENTION_DAYS > 0:
        cutoff = now - timedelta(days=settings.CONVERSATION_RETENTION_DAYS)
        while batch := _conversations_batch(cutoff):
            anonymised += batch
        for customer_id in _customers_past(cutoff):
            customer_erase(customer_id=customer_id, actor_label=LABEL)
            erased += 1
    run = RetentionRun(deleted, anonymised, erased)
    if anonymised or deleted:  # customers erased have their own rows
        audit_record(
            actor=None,
            actor_label=LABEL,
            action="retention.run",
            target=None,
            detail={"audit_deleted": deleted, "conversations_anonymised": anonymised},
        )
    return run
