"""The console's customer panel: the customer's record in the connected CRM/ERP, read through the
connector tools the assistant uses and scoped the same way (the conversation's customer, never
anything an agent types). Only tools that read and take no arguments (CONSOLE_CRM_PANEL_TOOLS)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from django.conf import settings

from apps.connectors.models import Tool
from apps.connectors.registry import Identity, ToolError, backend_for
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


def crm_panel_for_conversation(*, conversation_id: UUID | str) -> CrmPanel | None:
    """The panel for the conversation's customer (None: no such conversation). Makes one HTTP
    call per configured tool, each within its connector's timeouts: call it from a thread."""
    conversation = Conversation.objects.select_related("customer").filter(pk=conversation_id).first()
    if conversation is None:
        return None
    customer = conversation.customer
    if customer.is_anonymous:
        return CrmPanel(anonymous=True, sections=[])
    identity = Identity(external_id=customer.external_id, email=customer.email)
    return CrmPanel(anonymous=False, sections=[_section(tool, identity) for tool in _panel_tools()])


def _panel_tools() -> list[Tool]:
    """The configured tools in their configured order; the first connector (by slug) per name."""
    names = list(settings.CONSOLE_CRM_PANEL_TOOLS)
    rows = Tool.objects.select_related("connector").filter(
        name__in=names, enabled=True, connector__enabled=True, requires_confirmation=False
    )
    chosen: dict[str, Tool] = {}
    for tool in rows.order_by("connector__slug"):
        if tool.name not in chosen and not (tool.parameters or {}).get("required"):
            chosen[tool.name] = tool
    return [chosen[name] for name in names if name in chosen]


def _section(tool: Tool, identity: Identity) -> CrmSection:
    system = tool.connector.name
    title = _label(tool.name)
    try:
        result = backend_for(tool.connector.kind).execute(
            connector=tool.connector, tool=tool, arguments={}, identity=identity, idempotency_key=""
        )
    except ToolError as exc:
        message = _ERRORS.get(exc.code, "{system} could not be reached just now.").format(system=system)
        return CrmSection(title=title, source=system, error=message)
    return _shaped(title, system, result.data)


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
