"""The audit log is append-only in Python and in Postgres; only the retention job deletes
(kefu.audit_retention) and only erasure redacts payloads (kefu.audit_erasure)."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from apps.audit.models import AuditEntry, AuditImmutable
from apps.audit.services import audit_customer_redact, audit_entries_purge, audit_record

pytestmark = pytest.mark.django_db


def sql(statement: str, params: list | None = None) -> int:
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(statement, params or [])
        return cursor.rowcount


@pytest.fixture
def entry() -> AuditEntry:
    return audit_record(
        actor=None,
        action="conversation.claim",
        target=("conversations.conversation", "c-1"),
        before={"state": "bot"},
        after={"state": "human"},
    )


def test_the_database_refuses_update_and_delete_from_any_client(entry) -> None:
    with pytest.raises(DatabaseError, match="append-only: UPDATE refused"):
        sql("UPDATE audit_auditentry SET action = 'forged' WHERE id = %s", [entry.pk])
    with pytest.raises(DatabaseError, match="append-only: DELETE refused"):
        sql("DELETE FROM audit_auditentry WHERE id = %s", [entry.pk])
    entry.refresh_from_db()
    assert (entry.action, AuditEntry.objects.count()) == ("conversation.claim", 1)


def test_the_model_refuses_save_update_and_delete(entry) -> None:
    entry.action = "forged"
    with pytest.raises(AuditImmutable):
        entry.save()
    with pytest.raises(AuditImmutable):
        entry.delete()
    with pytest.raises(AuditImmutable):
        AuditEntry.objects.filter(pk=entry.pk).update(action="forged")
    with pytest.raises(AuditImmutable):
        AuditEntry.objects.filter(pk=entry.pk).delete()
    assert AuditEntry.objects.get(pk=entry.pk).action == "conversation.claim"


def test_the_erasure_switch_allows_payload_redaction_but_not_rewriting_who_did_what() -> None:
    customer_id = uuid.uuid4()
    row = audit_record(
        actor=None,
        action="tool_call.finish",
        target=("connectors.toolcall", "t-1"),
        detail={"arguments": {"email": "x@example.com"}, "status": "succeeded", "error": ""},
        customer_id=customer_id,
    )
    assert audit_customer_redact(customer_id=customer_id) == 1
    row.refresh_from_db()
    assert row.detail == {"status": "succeeded", "redacted": True}
    with pytest.raises(DatabaseError, match="UPDATE refused"):
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SELECT set_config('kefu.audit_erasure', 'on', true)")
            cursor.execute("UPDATE audit_auditentry SET action = 'forged' WHERE id = %s", [row.pk])
    # The switch is transaction-local: the next transaction is refused again.
    with pytest.raises(DatabaseError, match="UPDATE refused"):
        sql("UPDATE audit_auditentry SET detail = '{}' WHERE id = %s", [row.pk])


def test_retention_deletes_only_rows_older_than_the_cutoff() -> None:
    old = audit_record(actor=None, action="conversation.close", target=None)
    new = audit_record(actor=None, action="conversation.close", target=None)
    AuditEntry.objects.bulk_create([AuditEntry(action="ancient", at=timezone.now() - timedelta(days=400))])
    assert audit_entries_purge(older_than=timezone.now() - timedelta(days=365)) == 1
    assert sorted(AuditEntry.objects.values_list("action", flat=True)) == ["conversation.close"] * 2
    assert {old.pk, new.pk} == set(AuditEntry.objects.values_list("pk", flat=True))
