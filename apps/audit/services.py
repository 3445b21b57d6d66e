"""Writing the audit log. Callers write one row per change, inside the change's own transaction,
so a rolled-back change leaves no row and a committed one always has its row."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any
from uuid import UUID

from django.db import connection, models, transaction

from .context import audit_ip
from .models import AuditEntry

Target = models.Model | tuple[str, Any] | None


def actor_label_of(actor: Any) -> str:
    if actor is None:
        return "assistant"
    name = actor.get_full_name() if hasattr(actor, "get_full_name") else ""
    username = actor.get_username() if hasattr(actor, "get_username") else str(actor)
    return f"{name} ({username})" if name and name != username else username


def _target(target: Target) -> tuple[str, str]:
    if target is None:
        return "", ""
    if isinstance(target, tuple):
        return target[0], str(target[1])
    return target._meta.label_lower, str(target.pk)


def audit_record(
    *,
    actor: Any,
    action: str,
    target: Target,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    ip: str | None = None,
    detail: dict[str, Any] | None = None,
    customer_id: UUID | str | None = None,
    actor_label: str | None = None,
) -> AuditEntry:
    """One row: `actor` a staff user (None: the assistant or the system), `action` like
    "conversation.claim", `target` a model instance or ("type", id). The IP defaults to the
    current request's or socket's (context.py)."""
    target_type, target_id = _target(target)
    return AuditEntry.objects.create(
        actor=actor if getattr(actor, "pk", None) is not None else None,
        actor_label=actor_label if actor_label is not None else actor_label_of(actor),
        action=action,
        target_type=target_type,
        target_id=target_id,
        ip=ip or audit_ip(),
        before=before,
        after=after,
        detail=detail or {},
        customer_id=customer_id,
    )


def audit_tool_call(*, call: Any) -> AuditEntry:
    """A tool call at its final state (succeeded, failed, declined): who asked (the customer,
    or the staff member of a console read), the arguments the model filled, the outcome.
    Recorded, not referenced: ToolCall rows go with their conversation, the log must not."""
    customer_id = call.conversation.customer_id
    staff = call.requested_by if call.requested_by_id is not None else None
    return audit_record(
        actor=staff,
        actor_label=actor_label_of(staff) if staff else f"assistant (asked by customer {customer_id})",
        action="tool_call.finish",
        target=call,
        detail={
            "status": call.status,
            "http_status": call.http_status,
            "tool": call.name,
            "connector": call.connector_slug,
            "conversation_id": str(call.conversation_id),
            "customer_id": str(customer_id),
            "arguments": call.arguments,
            "error": call.error,
            "attempts": call.attempts,
        },
        customer_id=customer_id,
        ip="" if staff is None else None,  # the assistant acts from no client address
    )


@contextmanager
def _switch(name: str) -> Iterator[None]:
    """The trigger's switch, on for this block only (set_config is transaction-local, and the
    caller's transaction may go on after us: switched off again on the way out)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT set_config(%s, 'on', true)", [name])
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SELECT set_config(%s, 'off', true)", [name])


@transaction.atomic
def audit_entries_purge(*, older_than: datetime) -> int:
    """Retention: delete rows older than `older_than` (the trigger lets this transaction)."""
    doomed = AuditEntry.objects.filter(at__lt=older_than)
    with _switch("kefu.audit_retention"):
        count, _ = models.QuerySet.delete(doomed)
    return count


# Keys of `detail` that may carry what a customer typed or a system returned about them.
PERSONAL_DETAIL_KEYS = ("arguments", "error")


@transaction.atomic
def audit_customer_redact(*, customer_id: UUID | str) -> int:
    """Erasure: blank the personal payload of rows about this customer (before/after, a tool
    call's arguments and error); who did what, when and to what, and the outcome, stay."""
    table = AuditEntry._meta.db_table
    with _switch("kefu.audit_erasure"), connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET before = NULL, after = NULL, "  # noqa: S608 (the model's own table)
            "detail = (detail - %s::text[]) || '{\"redacted\": true}'::jsonb WHERE customer_id = %s",
            [list(PERSONAL_DETAIL_KEYS), str(customer_id)],
        )
        return cursor.rowcount


@transaction.atomic
def audit_conversations_redact(*, conversation_ids: list[str]) -> int:
    """Retention and erasure of conversations: the same redaction for rows about them (their
    tool calls carry the conversation id in `detail`)."""
    if not conversation_ids:
        return 0
    table = AuditEntry._meta.db_table
    with _switch("kefu.audit_erasure"), connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET before = NULL, after = NULL, "  # noqa: S608 (the model's own table)
            "detail = (detail - %s::text[]) || '{\"redacted\": true}'::jsonb "
            "WHERE detail->>'conversation_id' = ANY(%s) AND NOT detail ? 'redacted'",
            [list(PERSONAL_DETAIL_KEYS), [str(i) for i in conversation_ids]],
        )
        return cursor.rowcount


def conversation_audit_state(conversation: Any) -> dict[str, Any]:
    """What an agent's action changes on a conversation, for before/after."""
    return {
        "state": conversation.state,
        "assignee_id": conversation.assignee_id,
        "team_id": getattr(conversation, "team_id", None),
    }


def audit_conversation(
    *,
    actor: Any,
    action: str,
    conversation: Any,
    before: dict[str, Any] | None = None,
    detail: dict[str, Any] | None = None,
) -> AuditEntry:
    """An agent's change to a conversation: `before` as conversation_audit_state read it after
    the lock, `after` read now (same transaction)."""
    return audit_record(
        actor=actor,
        action=action,
        target=conversation,
        before=before,
        after=conversation_audit_state(conversation),
        detail=detail,
    )
