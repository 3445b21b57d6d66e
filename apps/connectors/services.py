"""Tool calls: request (ask first for writes), confirm, execute (in a Celery worker), finish.

The `ToolCall` row is the truth; a task is only a retryable way to move it forward. Every status
change emits the durable `tool` event through the one gate (holding the call's conversation,
locked before the call: apps/conversations/locking.py), and a final status also LPUSHes a
notification to Redis for the waiting toolbox (which re-reads the row, so a lost notification
costs a wait slice, never an answer).
"""

from __future__ import annotations

import logging
import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext, gettext_noop

from apps.audit.services import audit_tool_call
from apps.conversations.errors import ConversationConflict, ConversationForbidden, ConversationNotFound
from apps.conversations.events import event_emit
from apps.conversations.language import spoken
from apps.conversations.locking import conversation_lock_for
from apps.conversations.models import Conversation
from apps.core.redis import redis_key, redis_sync

from .models import FINAL_STATUSES, Tool, ToolCall, ToolCallStatus
from .questions import QuestionTooLong, confirmation_question
from .registry import ToolError, backend_for, identity_missing, identity_of

logger = logging.getLogger(__name__)

MAX_BACKOFF_S = 30.0
NOTIFY_TTL_S = 600


# What an approved write makes due: the assistant registers its follow-up answer here when Django
# starts (apps/assistant/apps.py), so connectors never import the layer above.
ApprovedHandler = Callable[..., object]
_approved_handler: ApprovedHandler | None = None


def tool_call_approved_handler_register(handler: ApprovedHandler) -> None:
    """`handler(conversation_id=..., tool_call_id=...)` runs inside the approval's transaction."""
    global _approved_handler
    _approved_handler = handler


def tool_call_done_key(call_id: UUID | str) -> str:
    return redis_key("tool", call_id, "done")


def _notify(call_id: UUID | str) -> None:
    try:
        client = redis_sync()
        key = tool_call_done_key(call_id)
        client.lpush(key, "1")
        client.expire(key, NOTIFY_TTL_S)
    except Exception:  # the waiter re-reads the row after its slice: late, never wrong
        logger.warning("tool call %s: done-notification not sent (Redis unavailable)", call_id)


def _emit(call: ToolCall, status: str, detail: str) -> None:
    # A staff member's call (the console's panel) is internal: audited on its row, never an event.
    if call.requested_by_id is not None:
        return
    # Customer-safe fields only: arguments and results stay on the row, for agents.
    event_emit(
        conversation=call.conversation_id,
        type="tool",
        payload={"call_id": str(call.id), "name": call.name, "status": status, "detail": detail},
    )


def _progress_text(tool: Tool | None, name: str, language: str = "") -> str:
    """The tool's progress line in the customer's language: an admin's text is looked up in the
    translations (the demo tools' are there); one no translator has seen is shown as written."""
    with spoken(language):
        if tool and tool.progress_text:
            return gettext(tool.progress_text)
        return gettext("Running %(name)s…") % {"name": name.replace("_", " ")}


def _said(text: str, language: str, **kw: Any) -> str:
    """One of the customer-safe lines below, in the customer's language."""
    with spoken(language):
        return gettext(text) % kw if kw else gettext(text)


SIGN_IN_DETAIL = gettext_noop("Please sign in first, so I can look this up for you.")
TOO_LONG_DETAIL = gettext_noop("That request is too long to show you for approval, so nothing was sent.")


def _enqueue(call_id: UUID | str) -> None:
    from .tasks import tool_call_run_task

    transaction.on_commit(lambda: tool_call_run_task.delay(str(call_id)), robust=True)


@transaction.atomic
def tool_call_request(
    *, conversation_id: UUID | str, turn_id: UUID | str | None, tool: Tool, arguments: dict[str, Any]
) -> ToolCall:
    """Record a call the assistant asked for. Writes wait for the customer's approval (the
    `awaiting_confirmation` question, naming every argument); reads are queued for a worker at
    once. A tool needing an identity the customer has not proved fails here, before any request."""
    call_id = uuid.uuid4()
    # The conversation before its calls and turns (apps/conversations/locking.py).
    conversation = (
        Conversation.objects.select_for_update(no_key=True, of=("self",)).select_related("customer")
        .get(pk=conversation_id)
    )
    customer, language = conversation.customer, conversation.language
    status, detail, error = ToolCallStatus.QUEUED, _progress_text(tool, tool.name, language), ""
    if identity_missing(tool, identity_of(customer)):
        error = "identity_required: anonymous, or no verified e-mail"
        status, detail = ToolCallStatus.FAILED, _said(SIGN_IN_DETAIL, language)
    elif tool.asks_first:
        try:
            status, detail = (
                ToolCallStatus.AWAITING_CONFIRMATION,
                confirmation_question(tool=tool, arguments=arguments, language=language),
            )
        except QuestionTooLong as exc:
            status, detail = ToolCallStatus.FAILED, _said(TOO_LONG_DETAIL, language)
            error = f"question_too_long: {exc}"
    call = ToolCall.objects.create(
        id=call_id,
        conversation_id=conversation_id,
        turn_id=turn_id,
        tool=tool,
        name=tool.name,
        connector_slug=tool.connector.slug,
        arguments=arguments,
        idempotency_key=f"kefu-toolcall-{call_id}",
        status=status,
        detail=detail,
        error=error,
        result={"error": error.split(":", 1)[0]} if error else None,
        finished_at=timezone.now() if status == ToolCallStatus.FAILED else None,
    )
    _emit(call, call.status, call.detail)
    if status == ToolCallStatus.FAILED:
        audit_tool_call(call=call)  # failed before any request: its final state
    if status == ToolCallStatus.QUEUED:
        _enqueue(call.id)
    return call


@transaction.atomic
def tool_call_confirm(*, customer_id: str, conversation_id: str, call_id: str, approve: bool) -> bool:
    """The customer's answer to an `awaiting_confirmation` question. A decline leaves nothing
    done; an approval queues the write and makes a follow-up answer due that reports it."""
    if _approved_handler is None:  # without it an approved write would never be reported
        raise RuntimeError("No follow-up handler: is apps.assistant in INSTALLED_APPS?")
    try:
        conversation = Conversation.objects.select_for_update(no_key=True).get(pk=conversation_id)
        call = ToolCall.objects.select_for_update(no_key=True).get(
            pk=call_id, conversation=conversation, requested_by__isnull=True
        )
    except (Conversation.DoesNotExist, ToolCall.DoesNotExist, ValueError):
        raise ConversationNotFound("No such question to confirm in this conversation.") from None
    if str(conversation.customer_id) != str(customer_id):
        raise ConversationForbidden("This conversation belongs to someone else.")
    if call.status != ToolCallStatus.AWAITING_CONFIRMATION:
        raise ConversationConflict("This question was already answered.")
    if not approve:
        call.status, call.finished_at = ToolCallStatus.DECLINED, timezone.now()
        call.save(update_fields=["status", "finished_at", "updated_at"])
        audit_tool_call(call=call)
        question = call.detail.splitlines()[0] if call.detail else ""
        declined = _said(gettext_noop("Declined: %(question)s"), conversation.language, question=question)
        _emit(call, ToolCallStatus.DECLINED, declined)
        transaction.on_commit(lambda: _notify(call.id))
        return False
    call.status = ToolCallStatus.QUEUED
    call.save(update_fields=["status", "updated_at"])
    _emit(call, ToolCallStatus.QUEUED, _progress_text(call.tool, call.name, conversation.language))
    _enqueue(call.id)
    _approved_handler(conversation_id=conversation.pk, tool_call_id=call.id)
    return True


def tool_call_execute(*, call_id: UUID | str, task_id: str = "") -> float | None:
    """One try of a queued or interrupted call (what the Celery task does). Returns the seconds
    to wait before the next try, or None when the call is finished (or was already)."""
    with transaction.atomic():
        if conversation_lock_for(model=ToolCall, pk=call_id) is None:
            return None
        call = (
            ToolCall.objects.select_for_update(no_key=True, of=("self",))
            .select_related("tool__connector", "conversation__customer")
            .filter(pk=call_id)
            .first()
        )
        # A redelivered or repeated task finds the call finished and does nothing again.
        if call is None or call.status not in (ToolCallStatus.QUEUED, ToolCallStatus.RUNNING):
            return None
        again = call.status == ToolCallStatus.RUNNING or call.attempts > 0
        call.status, call.attempts, call.task_id = ToolCallStatus.RUNNING, call.attempts + 1, task_id[:100]
        call.save(update_fields=["status", "attempts", "task_id", "updated_at"])
        language = call.conversation.language
        progress = _progress_text(call.tool, call.name, language)
        if again:
            still = gettext_noop("%(progress)s (still working on it)")
            _emit(call, "progress", _said(still, language, progress=progress))
        else:
            _emit(call, ToolCallStatus.RUNNING, progress)
    tool = call.tool
    if tool is None or not tool.enabled or not tool.connector.enabled:
        return _finish(call, error=ToolError("This tool is no longer available.", code="unavailable"))
    identity = identity_of(call.conversation.customer)
    if identity_missing(tool, identity):  # whatever queued it, no request without the identity
        return _finish(call, error=ToolError("This needs a signed-in customer.", code="identity_required"))
    try:
        result = backend_for(tool.connector.kind).execute(
            connector=tool.connector,
            tool=tool,
            arguments=call.arguments,
            identity=identity,
            idempotency_key=call.idempotency_key,
        )
    except ToolError as exc:
        if exc.retryable and call.attempts < tool.connector.max_attempts:
            ToolCall.objects.filter(pk=call.pk).update(
                error=exc.message, http_status=exc.status, updated_at=timezone.now()
            )
            backoff = exc.retry_after if exc.retry_after is not None else 0.5 * 2 ** (call.attempts - 1)
            return min(MAX_BACKOFF_S, backoff) * (1 + random.random() * 0.1)
        return _finish(call, error=exc)
    return _finish(call, result=result.data, http_status=result.status)


_FAILED_DETAIL = {
    "not_found": gettext_noop("%(system)s found nothing matching that for your account."),
    "identity_required": SIGN_IN_DETAIL,
    "rejected": gettext_noop("%(system)s could not do that."),
}
_UNREACHABLE = gettext_noop("%(system)s could not be reached just now.")


@transaction.atomic
def _finish(
    call: ToolCall, *, result: Any = None, http_status: int | None = None, error: ToolError | None = None
) -> None:
    conversation_lock_for(model=ToolCall, pk=call.pk)
    row = ToolCall.objects.select_for_update(no_key=True).get(pk=call.pk)
    system = call.tool.connector.name if call.tool else call.connector_slug
    if row.status != ToolCallStatus.RUNNING:
        # The waiting answer gave up first (its deadline): keep the late outcome for agents only.
        row.result = result
        row.error = (row.error + "\n" if row.error else "") + "finished after the answer stopped waiting"
        row.save(update_fields=["result", "error", "updated_at"])
        return None
    row.finished_at = timezone.now()
    if error is None:
        row.status, row.result, row.http_status, row.error = ToolCallStatus.SUCCEEDED, result, http_status, ""
        _emit(row, ToolCallStatus.SUCCEEDED, _progress_text(call.tool, call.name, call.conversation.language))
    else:
        row.status, row.http_status = ToolCallStatus.FAILED, error.status
        row.error = f"{error.code}: {error.message}"
        row.result = {"error": error.code, "message": error.message}
        template = _FAILED_DETAIL.get(error.code, _UNREACHABLE)
        _emit(row, ToolCallStatus.FAILED, _said(template, call.conversation.language, system=system))
    row.save()
    audit_tool_call(call=row)
    if row.requested_by_id is None:
        transaction.on_commit(lambda: _notify(row.id))
    return None


@transaction.atomic
def tool_call_give_up(*, call_id: UUID | str, reason: str) -> None:
    """The answer stops waiting (its deadline passed): fail the call unless it finished."""
    conversation_lock_for(model=ToolCall, pk=call_id)
    row = (
        ToolCall.objects.select_for_update(no_key=True, of=("self",))
        .select_related("tool__connector", "conversation")
        .filter(pk=call_id)
        .first()
    )
    if row is None or row.status in FINAL_STATUSES or row.status == ToolCallStatus.AWAITING_CONFIRMATION:
        return
    system = row.tool.connector.name if row.tool else row.connector_slug
    row.status, row.finished_at = ToolCallStatus.FAILED, timezone.now()
    row.error = (row.error + "\n" if row.error else "") + reason
    row.save(update_fields=["status", "finished_at", "error", "updated_at"])
    audit_tool_call(call=row)
    took_long = gettext_noop("%(system)s took too long to answer.")
    _emit(row, ToolCallStatus.FAILED, _said(took_long, row.conversation.language, system=system))


def tool_call_run_for_staff(*, conversation_id: UUID | str, tool: Tool, user: Any) -> ToolCall:
    """A staff member's read for a conversation (the console's CRM panel) as a recorded call: the
    same row and the same execution as the Celery task's, run here once since the page waits
    (no retry backoff). Internal: no customer event, no seq, not in the assistant's prompt."""
    if tool.asks_first:
        raise ValueError(f"{tool.name} asks the customer first; staff run reads only.")
    call_id = uuid.uuid4()
    ToolCall.objects.create(
        id=call_id,
        conversation_id=conversation_id,
        tool=tool,
        name=tool.name,
        connector_slug=tool.connector.slug,
        arguments={},
        idempotency_key=f"kefu-toolcall-{call_id}",
        detail=_progress_text(tool, tool.name),
        requested_by=user,
    )
    if tool_call_execute(call_id=call_id) is not None:
        tool_call_give_up(call_id=call_id, reason="a staff read is tried once (the page is waiting)")
    return ToolCall.objects.select_related("tool__connector").get(pk=call_id)


# What an admin reviewed before enabling an imported tool: what the model fills and what is sent.
_REVIEWED_SHAPE = ("method", "path_template", "query_map", "body_map", "parameters")


@dataclass(frozen=True)
class ToolsImported:
    connector: Any
    enabled: dict[str, bool]  # tool name -> enabled after the import


@transaction.atomic
def connector_tools_import(*, slug: str, plan: Any, base_url: str | None = None) -> ToolsImported:
    """Create or update the connector's tools from an `openapi.ImportPlan` (one row per tool).

    New tools are created disabled until an admin reviews them. A re-import keeps an admin's
    decisions (enabled, requires_confirmation, the waiver) only while the tool's request shape
    is unchanged; a changed shape is a new tool to review, so it is disabled again."""
    from .models import Connector

    connector, created = Connector.objects.get_or_create(
        slug=slug,
        defaults={"name": plan.title or slug, "base_url": base_url or plan.base_url or "http://localhost"},
    )
    if base_url and not created and connector.base_url != base_url:
        connector.base_url = base_url
        connector.save(update_fields=["base_url", "updated_at"])
    existing = {t.name: t for t in connector.tools.all()}
    new, changed = [], []
    reviewed = ["enabled", "requires_confirmation", "confirmation_waived_reason"]
    for draft in plan.tools:
        fields = {
            "description": draft.description,
            "parameters": draft.parameters,
            "method": draft.method,
            "path_template": draft.path,
            "query_map": draft.query_map,
            "body_map": draft.body_map,
            "confirmation_template": draft.confirmation_template,
        }
        defaults = {
            "enabled": False,
            "requires_confirmation": draft.requires_confirmation,
            "confirmation_waived_reason": "",
        }
        tool = existing.get(draft.name)
        if tool is None:
            new.append(Tool(connector=connector, name=draft.name, **fields, **defaults))
            continue
        same = all(getattr(tool, key) == fields[key] for key in _REVIEWED_SHAPE)
        for key, value in {**fields, **({} if same else defaults)}.items():
            setattr(tool, key, value)
        changed.append(tool)
    Tool.objects.bulk_create(new, batch_size=500)
    Tool.objects.bulk_update(changed, [*fields, *reviewed] if changed else ["description"], batch_size=500)
    return ToolsImported(connector=connector, enabled={t.name: t.enabled for t in [*new, *changed]})
