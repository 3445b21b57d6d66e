"""The audit log: one append-only row per staff change and per tool call the assistant made.

Append-only twice over: the model refuses updates and deletes in Python, and a Postgres
trigger (migration 0002) refuses UPDATE and DELETE from any client unless the transaction set
one of two switches with `set_config(..., true)` (transaction-local):
- `kefu.audit_retention = 'on'`: DELETE, for the retention job (services.audit_entries_purge);
- `kefu.audit_erasure = 'on'`: UPDATE of the payload columns only (before, after, detail,
  actor_label, ip) of rows about an erased customer; who did what, when and to what stays.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone


class AuditImmutable(Exception):
    """Audit rows are never changed or deleted, except by retention and erasure."""


class AuditEntryQuerySet(models.QuerySet):
    def update(self, **kwargs):  # noqa: ANN001, ANN003
        raise AuditImmutable("Audit rows are append-only.")

    def delete(self):  # noqa: ANN201
        raise AuditImmutable("Audit rows are append-only; AUDIT_RETENTION_DAYS removes old ones.")


class AuditEntry(models.Model):
    id = models.BigAutoField(primary_key=True)
    at = models.DateTimeField(default=timezone.now, db_index=True)
    # Null: the assistant or the system. No database constraint and no cascade: deleting a user
    # must neither fail on nor rewrite the log; actor_label keeps who it was.
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        null=True,
        blank=True,
        related_name="+",
    )
    actor_label = models.CharField(max_length=200, blank=True)
    action = models.CharField(max_length=100, db_index=True)  # "conversation.claim"
    target_type = models.CharField(max_length=100, blank=True)  # "conversations.conversation"
    target_id = models.CharField(max_length=100, blank=True)
    ip = models.GenericIPAddressField(null=True, blank=True)
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)
    detail = models.JSONField(default=dict, blank=True)
    # The customer whose data the row is about (a tool call's, a customer edit's): erasure
    # blanks its payload columns. Never their name, e-mail or external id, only the Kefu id.
    customer_id = models.UUIDField(null=True, blank=True, db_index=True)

    objects = AuditEntryQuerySet.as_manager()

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [models.Index(fields=["target_type", "target_id"], name="audit_target")]
        verbose_name = "audit entry"
        verbose_name_plural = "audit log"

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M:%S} {self.actor_label or 'assistant'} {self.action}"

    def save(self, *args, **kwargs) -> None:  # noqa: ANN002, ANN003
        if not self._state.adding:
            raise AuditImmutable("Audit rows are append-only.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):  # noqa: ANN002, ANN003, ANN201
        raise AuditImmutable("Audit rows are append-only; AUDIT_RETENTION_DAYS removes old ones.")
