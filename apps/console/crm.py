"""The console's customer panel: the customer's record in the connected CRM/ERP, read through the
connector tools the assistant uses and scoped the same way (the conversation's customer, never
anything an agent types). Only tools that read and take no arguments (CONSOLE_CRM_PANEL_TOOLS).

Each read is a `ToolCall` row like every other call (audited, with the staff member in
`requested_by`), run by the Celery task's own execution function; such rows are internal: no
customer `tool` event, no seq, nothing in the assistant's prompt."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from django.conf import settings

from apps.connectors.models import Tool, ToolCall, ToolCallStatus
from apps.connectors.registry import identity_of
from apps.connectors.services import tool_call_run_for_staff
from apps.conversations.models import Conversation

MAX_ROWS = 10
_ERRORS = {
    "not_found": "{system} has no record of this customer.",
    "identity_required": "{system} needs a signed-in customer.",
}


@dataclass(frozen=True)
class CrmSection:
    """One tool's answer, shaped for a template: scalar fields, and the first list as a table."""

    title: str
    source: str
    fields: list[tuple[str, str]] = field(default_factory=list)
    columns: list[str] = field(default_factory=list)
    rows: list[list[str]] = field(default_factory=list)
    more: int = 0  # rows left out (more than MAX_ROWS)
    error: str = ""


@dataclass(frozen=True)
class CrmPanel:
    anonymous: bool
    sections: list[CrmSection]


def crm_panel_for_conversation(*, conversation_id: UUID | str, user: Any) -> CrmPanel | None:
    """The panel for the conversation's customer, read on behalf of `user` (a staff member)
    (None: no such conversation). Makes one HTTP call per configured tool, each within its
    connector's timeouts: call it from a thread."""
    conversation = Conversation.objects.select_related("customer").filter(pk=conversation_id).first()
    if conversation is None:
        return None
    if identity_of(conversation.customer) is None:
        return CrmPanel(anonymous=True, sections=[])
    return CrmPanel(
        anonymous=False,
        sections=[_section(tool, conversation.pk, user) for tool in _panel_tools()],
    )


def _panel_tools() -> list[Tool]:
    """The configured tools in their configured order; the first connector (by slug) per name."""
    names = list(settings.CONSOLE_CRM_PANEL_TOOLS)
    rows = Tool.objects.select_related("connector").filter(
        name__in=names, enabled=True, connector__enabled=True
    )
    chosen: dict[str, Tool] = {}
    for tool in rows.order_by("connector__slug"):
        if tool.asks_first:  # writes (and reads flagged to ask) never run from a panel
            continue
        if tool.name not in chosen and not (tool.parameters or {}).get("required"):
            chosen[tool.name] = tool
    return [chosen[name] for name in names if name in chosen]


def _section(tool: Tool, conversation_id: UUID, user: Any) -> CrmSection:
    system = tool.connector.name
    title = _label(tool.name)
    call: ToolCall = tool_call_run_for_staff(conversation_id=conversation_id, tool=tool, user=user)
    if call.status != ToolCallStatus.SUCCEEDED:
        code = call.result.get("error") if isinstance(call.result, dict) else None
        message = _ERRORS.get(code, "{system} could not be reached just now.").format(system=system)
        return CrmSection(title=title, source=system, error=message)
    return _shaped(title, system, _ordered(call.result, tool.response_fields or []))


def _ordered(data: Any, fields: list[str], prefix: str = "") -> Any:
    """The stored result (Postgres keeps JSON keys in its own order) in the order of the tool's
    `response_fields`, so the panel's columns read as configured."""
    if isinstance(data, list):
        return [_ordered(item, fields, prefix) for item in data]
    if not isinstance(data, dict):
        return data
    rank = {}
    for path in fields:
        if path.startswith(prefix):
            rank.setdefault(path[len(prefix) :].split(".", 1)[0], len(rank))
    keys = sorted(data, key=lambda k: rank.get(k, len(rank)))
    return {k: _ordered(data[k], fields, f"{prefix}{k}.") for k in keys}


def _shaped(title: str, source: str, data: Any) -> CrmSection:
    if isinstance(data, list):
        data = {"items": data}
    if not isinstance(data, dict):
        return CrmSection(title=title, source=source, fields=[("Value", _text(data))])
    fields = [(_label(k), _text(v)) for k, v in data.items() if not isinstance(v, (dict, list))]
    fields += [
        (_label(f"{k} {sub}"), _text(v))
        for k, nested in data.items()
        if isinstance(nested, dict)
        for sub, v in nested.items()
        if not isinstance(v, (dict, list))
    ]
    table = next((v for v in data.values() if isinstance(v, list) and v and isinstance(v[0], dict)), None)
    if table is None:
        return CrmSection(title=title, source=source, fields=fields)
    keys = [k for k, v in table[0].items() if not isinstance(v, (dict, list))]
    rows = [[_text(item.get(k)) for k in keys] for item in table[:MAX_ROWS] if isinstance(item, dict)]
    return CrmSection(
        title=title,
        source=source,
        fields=fields,
        columns=[_label(k) for k in keys],
        rows=rows,
        more=max(0, len(table) - MAX_ROWS),
    )


def _label(key: str) -> str:
    return key.replace("_", " ").replace(".", " ").strip().capitalize()


def _text(value: Any) -> str:
    if value is None or value == "":
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)
