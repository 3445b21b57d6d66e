"""What the console reads: the queue (ordered, filtered, searched), one conversation's whole
history for agents, and the display names agents see."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from django.contrib.auth import get_user_model
from django.db.models import (
    Case,
    Count,
    Exists,
    F,
    IntegerField,
    Max,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Value,
    When,
)
from django.db.models.functions import Coalesce

from apps.conversations.models import Conversation, ConversationEvent, ConversationState, Message, MessageRole
from apps.sla.selectors import sla_queue_annotations, sla_to_wire

from .models import CannedReply, Note
from .visibility import Viewer

QUEUE_LIMIT = 200
STATES = [choice.value for choice in ConversationState]


def agent_name(user: Any) -> str:
    """The display name customers and agents see (same rule as message authors)."""
    return user.get_full_name() or user.get_username()


def agent_to_wire(user: Any) -> dict[str, Any] | None:
    return None if user is None else {"id": user.pk, "name": agent_name(user)}


def team_to_wire(team: Any) -> dict[str, Any] | None:
    return None if team is None else {"id": team.pk, "name": team.name}


def agents_list() -> list[Any]:
    """Staff users who can be assigned conversations, by name."""
    return list(
        get_user_model().objects.filter(is_staff=True, is_active=True).order_by("first_name", "username")
    )


def _queue_queryset() -> QuerySet[Conversation]:
    newest = Message.objects.filter(conversation=OuterRef("pk")).order_by("-created_at")
    unread = (
        Message.objects.filter(
            conversation=OuterRef("pk"),
            role=MessageRole.CUSTOMER,
            seq__gt=Coalesce(OuterRef("console_read__seq"), Value(0)),
        )
        .order_by()
        .values("conversation")
        .annotate(n=Count("*"))
        .values("n")
    )
    waited = (
        ConversationEvent.objects.filter(
            conversation=OuterRef("pk"), type="handoff", payload__state="waiting"
        )
        .order_by()
        .values("conversation")
        .annotate(at=Max("created_at"))
        .values("at")
    )
    return Conversation.objects.select_related("customer", "assignee", "team").annotate(
        last_role=Subquery(newest.values("role")[:1]),
        last_text=Subquery(newest.values("text")[:1]),
        last_at=Subquery(newest.values("created_at")[:1]),
        unread=Coalesce(Subquery(unread, output_field=IntegerField()), Value(0)),
        waiting_since=Case(When(state=ConversationState.WAITING, then=Subquery(waited))),
        **sla_queue_annotations(),
    )


def queue_list(
    *,
    agent_id: int,
    viewer: Viewer | None = None,
    state: str = "",
    assignee: str = "",
    search: str = "",
    include_closed: bool = False,
    limit: int = QUEUE_LIMIT,
) -> list[Conversation]:
    """The queue as an agent sees it: waiting first (oldest wait on top), then the assistant's
    conversations, then mine, then other agents', then (on request) closed ones; newest
    activity first within each group. `assignee` is "me", "none" or an agent id. With a
    `viewer`, only the conversations they may see (apps/console/visibility.py)."""
    conversations = _queue_queryset()
    if viewer is not None:
        conversations = conversations.filter(viewer.q())
    if state in STATES:
        conversations = conversations.filter(state=state)
    elif not include_closed:
        conversations = conversations.exclude(state=ConversationState.CLOSED)
    if assignee == "me":
        conversations = conversations.filter(assignee_id=agent_id)
    elif assignee == "none":
        conversations = conversations.filter(assignee__isnull=True)
    elif assignee.isdigit():
        conversations = conversations.filter(assignee_id=int(assignee))
    if search := search.strip():
        said = Message.objects.filter(conversation=OuterRef("pk"), text__icontains=search)
        conversations = conversations.filter(
            Q(customer__name__icontains=search) | Q(customer__email__icontains=search) | Exists(said)
        )
    rank = Case(
        When(state=ConversationState.WAITING, then=Value(0)),
        When(state=ConversationState.BOT, then=Value(1)),
        When(state=ConversationState.HUMAN, assignee_id=agent_id, then=Value(2)),
        When(state=ConversationState.HUMAN, then=Value(3)),
        default=Value(4),
        output_field=IntegerField(),
    )
    return list(
        conversations.annotate(rank=rank).order_by(
            "rank", F("waiting_since").asc(nulls_last=True), F("updated_at").desc(), "created_at"
        )[:limit]
    )


def queue_entry_get(*, conversation_id: UUID | str) -> Conversation | None:
    return _queue_queryset().filter(pk=conversation_id).first()


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def queue_entry_to_wire(conversation: Conversation) -> dict[str, Any]:
    """PROTOCOL.md §3 `conversation` entry (plus `csat` and `updated_at` for the console)."""
    customer = conversation.customer
    last = None
    if conversation.last_role is not None:
        last = {
            "role": conversation.last_role,
            "text": conversation.last_text,
            "created_at": _iso(conversation.last_at),
        }
    csat = None
    if conversation.csat_score is not None:
        csat = {"score": conversation.csat_score, "comment": conversation.csat_comment}
    return {
        "id": str(conversation.pk),
        "customer": {
            "id": str(customer.pk),
            "name": customer.name,
            "email": customer.email,
            "external_id": customer.external_id,
        },
        "state": conversation.state,
        "assignee": agent_to_wire(conversation.assignee),
        "team": team_to_wire(conversation.team),
        "last_message": last,
        "unread": conversation.unread,
        "waiting_since": _iso(conversation.waiting_since),
        "csat": csat,
        "sla": sla_to_wire(conversation),
        "updated_at": _iso(conversation.updated_at),
    }


def queue_wire(*, viewer: Viewer) -> list[dict[str, Any]]:
    return [queue_entry_to_wire(c) for c in queue_list(agent_id=viewer.agent_id, viewer=viewer)]


def note_to_wire(note: Note) -> dict[str, Any]:
    return {
        "id": str(note.pk),
        "author": agent_to_wire(note.author),
        "text": note.text,
        "created_at": note.created_at.isoformat(),
    }


def note_list(*, conversation_id: UUID | str) -> list[Note]:
    return list(
        Note.objects.filter(conversation_id=conversation_id).select_related("author").order_by("created_at")
    )


@dataclass(frozen=True)
class HistoryItem:
    """One line of the agent's view of a conversation, in time order."""

    kind: str  # message, note, tool, update, handoff, csat_request
    at: datetime
    data: dict[str, Any]


def conversation_history(*, conversation_id: UUID | str) -> list[HistoryItem]:
    """Everything agents see of a conversation: messages (all roles), tool calls with their
    arguments and results, CRM updates, handoffs, the CSAT question, and internal notes."""
    items: list[HistoryItem] = []
    messages = Message.objects.filter(conversation_id=conversation_id).select_related("author", "feedback")
    for message in messages:
        author = agent_name(message.author) if message.author_id else None
        feedback = getattr(message, "feedback", None)  # the customer's verdict on an answer
        items.append(
            HistoryItem(
                "message",
                message.created_at,
                {
                    "id": str(message.id),
                    "role": message.role,
                    "text": message.text,
                    "author": author,
                    "seq": message.seq,
                    "citations": message.citations,
                    "outcome": message.outcome,
                    "feedback": feedback and {"helpful": feedback.helpful, "comment": feedback.comment},
                },
            )
        )
    for event in ConversationEvent.objects.filter(
        conversation_id=conversation_id, type__in=["update", "handoff", "csat_request"]
    ):
        items.append(HistoryItem(event.type, event.created_at, {**event.payload, "seq": event.seq}))
    for note in note_list(conversation_id=conversation_id):
        items.append(HistoryItem("note", note.created_at, note_to_wire(note)))
    items.extend(_tool_calls(conversation_id))
    return sorted(items, key=lambda item: item.at)


def _tool_calls(conversation_id: UUID | str) -> list[HistoryItem]:
    """Tool calls with their arguments and results (agents only; customers see `detail`)."""
    try:
        from apps.connectors.models import ToolCall
    except ImportError:  # the connectors app is optional for the console
        return []
    items = []
    # The assistant's calls only: the CRM panel's reads (requested_by an agent) are audit rows,
    # not part of the conversation, and would add two entries each time the page opens.
    for call in ToolCall.objects.filter(conversation_id=conversation_id, requested_by__isnull=True):
        data = {
            "call_id": str(call.pk),
            "name": call.name,
            "status": call.status,
            "detail": call.detail,
            "arguments": json.dumps(call.arguments, indent=1, ensure_ascii=False, sort_keys=True),
            "result": "" if call.result is None else json.dumps(call.result, indent=1, ensure_ascii=False),
            "error": call.error,
        }
        items.append(HistoryItem("tool_call", call.created_at, data))
    return items


def canned_replies() -> list[dict[str, str]]:
    return [{"shortcut": c.shortcut, "title": c.title, "text": c.text} for c in CannedReply.objects.all()]
