"""Titles and bodies of `update` events from webhook types, by per-source templates.

A template names fields of the event's data in braces: `{order_id}` finds `data["order_id"]`,
else `data["order"]["id"]` (or `["number"]`), else the nearest such field in nested objects
(`data["order"]["shipment"]["tracking_number"]` for `{tracking_number}`); `{customer.email}`
follows the dots. `{type}` and `{action}` (the part after the first dot,
underscores as spaces) are always there. A body line naming a missing field is left out, so
one template serves payloads with and without, say, a tracking number.

A template's optional "data" lists the fields the `update` event's `data` may carry (PROTOCOL.md
§2), found the same way as placeholders and keyed by the name listed; fields that are missing,
empty or objects/lists are left out, so a whole payload (addresses, order lines) never reaches
the customer's socket. A source's own template without "data" gets the default's list for the
type, and a type without any template gets none.
"""

from __future__ import annotations

import re
from typing import Any

_ORDER = ["order_id", "status", "total", "currency"]
_SHIPMENT = ["order_id", "status", "carrier", "tracking_number", "tracking_url", "estimated_delivery"]
_TICKET = ["ticket_id", "status", "subject"]
_REFUND = ["order_id", "refund_id", "status", "amount", "currency"]

DEFAULT_TEMPLATES: dict[str, dict[str, Any]] = {
    "order.created": {
        "title": "We received your order {order_id}", "body": "Status: {status}", "data": _ORDER,
    },
    "order.shipped": {
        "title": "Your order {order_id} has shipped",
        "body": "Carrier: {carrier}\nTracking number: {tracking_number}\n{tracking_url}",
        "data": _SHIPMENT,
    },
    "order.delivered": {"title": "Your order {order_id} has been delivered", "body": "", "data": _SHIPMENT},
    "order.cancelled": {
        "title": "Your order {order_id} was cancelled",
        "body": "Reason: {reason}",
        "data": [*_ORDER, "reason"],
    },
    "order.*": {"title": "Your order {order_id} was updated", "body": "Status: {status}", "data": _ORDER},
    "shipment.*": {
        "title": "Shipment update for order {order_id}: {action}",
        "body": "Status: {status}\nCarrier: {carrier}\nTracking number: {tracking_number}",
        "data": _SHIPMENT,
    },
    "ticket.created": {"title": "We opened ticket {ticket_id} for you", "body": "{subject}", "data": _TICKET},
    "ticket.*": {"title": "Your ticket {ticket_id} was updated", "body": "Status: {status}\n{comment}",
                 "data": _TICKET},
    "refund.*": {
        "title": "Refund {action} for order {order_id}",
        "body": "Amount: {amount} {currency}\nStatus: {status}",
        "data": _REFUND,
    },
    "customer.*": {"title": "Your account was updated", "body": "", "data": []},
}
FALLBACK: dict[str, Any] = {"title": "Update: {type}", "body": "", "data": []}
GENERIC_TITLE = "Update: {type}"
_MAX_DATA_VALUE = 500  # characters of one data field

_FIELD = re.compile(r"\{([A-Za-z0-9_.\-]+)\}")
_MISSING = object()


def template_for(*, type: str, overrides: dict[str, Any]) -> dict[str, Any]:
    """The source's own template for this type or its prefix, else the default one:
    {"title": str, "body": str, "data": [field names]}."""
    prefix = type.split(".", 1)[0] + ".*"
    default = next((DEFAULT_TEMPLATES[k] for k in (type, prefix) if k in DEFAULT_TEMPLATES), FALLBACK)
    for templates in (overrides or {}, DEFAULT_TEMPLATES):
        for key in (type, prefix):
            found = templates.get(key)
            if isinstance(found, dict) and isinstance(found.get("title"), str):
                fields = found.get("data", default["data"])
                if not (isinstance(fields, list) and all(isinstance(f, str) for f in fields)):
                    fields = []  # a malformed list in the admin allows nothing rather than everything
                return {"title": found["title"], "body": str(found.get("body") or ""), "data": fields}
    return FALLBACK


def render_update(*, type: str, data: Any, overrides: dict[str, Any]) -> tuple[str, str, dict[str, Any]]:
    """(title, body, data) of the `update` event: `data` holds only the template's fields."""
    template = template_for(type=type, overrides=overrides)
    context = {"type": type, "action": type.split(".", 1)[-1].replace("_", " ")}
    title = _render_line(template["title"], data, context)
    if title is None:
        title = _render_line(GENERIC_TITLE, data, context)
    lines = (_render_line(line, data, context) for line in template["body"].split("\n"))
    body = "\n".join(line for line in lines if line)
    return title[:200], body[:2000], allowed_data(data=data, fields=template["data"])


def allowed_data(*, data: Any, fields: list[str]) -> dict[str, Any]:
    """The listed fields that hold a plain value (text, number, true/false), flat by name."""
    allowed: dict[str, Any] = {}
    for name in fields:
        value = lookup(data, name)
        if value is _MISSING or value in (None, "") or isinstance(value, dict | list):
            continue
        allowed[name] = value[:_MAX_DATA_VALUE] if isinstance(value, str) else value
    return allowed


def _render_line(line: str, data: Any, context: dict[str, str]) -> str | None:
    missing = False

    def substitute(match: re.Match[str]) -> str:
        nonlocal missing
        value = context.get(match.group(1), _MISSING)
        if value is _MISSING:
            value = lookup(data, match.group(1))
        if value is _MISSING or value in (None, "") or isinstance(value, dict | list):
            missing = True
            return ""
        return str(value)

    rendered = _FIELD.sub(substitute, line)
    return None if missing else rendered


def lookup(data: Any, name: str) -> Any:
    """A field of the event's data by template name (see the module docstring)."""
    if not isinstance(data, dict):
        return _MISSING
    if "." in name:
        value: Any = data
        for part in name.split("."):
            if not isinstance(value, dict) or part not in value:
                return _MISSING
            value = value[part]
        return value
    # Nearest first: the top level, then nested objects, three levels down at most.
    level = [data]
    for _ in range(3):
        for node in level:
            if name in node:
                return node[name]
            if name.endswith("_id") and isinstance(node.get(name[:-3]), dict):
                owner = node[name[:-3]]  # {order_id} from {"order": {"id"|"number": ...}}
                for key in ("id", "number"):
                    if owner.get(key) not in (None, ""):
                        return owner[key]
        level = [v for node in level for v in node.values() if isinstance(v, dict)]
    return _MISSING
