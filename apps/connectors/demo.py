"""The demo shop's `demo-crm` connector and its tools, pointing at DEMO_CRM_URL: configured
exactly as an operator would configure a real system in the admin."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils.translation import gettext_noop as _  # translated when said (services.py)

from .models import AuthType, Connector, Tool

ORDER_NUMBER = {"type": "string", "pattern": "^[A-Za-z]{2,4}-[0-9]{3,8}$", "description": "e.g. PP-1001"}
ORDER_FIELDS = [
    "number",
    "status",
    "placed_at",
    "total",
    "currency",
    "lines.name",
    "lines.quantity",
    "lines.unit_price",
    "shipment.carrier",
    "shipment.tracking_number",
    "shipment.shipped_at",
    "shipment.estimated_delivery",
    "shipment.delivered_at",
]


def _schema(properties: dict[str, Any] | None = None, required: list[str] | None = None) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": properties or {},
        "required": required or [],
        "additionalProperties": False,
    }


DEMO_TOOLS: list[dict[str, Any]] = [
    {
        "name": "customer_profile",
        "description": "The signed-in customer's profile (name, email, tier).",
        "parameters": _schema(),
        "method": "GET",
        "path_template": "/customers/{customer.external_id}",
        "response_fields": ["name", "email", "tier", "since"],
        "progress_text": _("Looking up your account…"),
    },
    {
        "name": "orders_list",
        "description": "The signed-in customer's orders, newest first, with their status.",
        "parameters": _schema(),
        "method": "GET",
        "path_template": "/customers/{customer.external_id}/orders",
        "response_fields": [
            "orders.number",
            "orders.status",
            "orders.placed_at",
            "orders.total",
            "orders.currency",
        ],
        "progress_text": _("Looking up your orders…"),
    },
    {
        "name": "order_status",
        "description": "Status, lines and total of one of the customer's orders.",
        "parameters": _schema({"order_number": ORDER_NUMBER}, ["order_number"]),
        "method": "GET",
        "path_template": "/customers/{customer.external_id}/orders/{order_number}",
        "response_fields": ORDER_FIELDS,
        "progress_text": _("Looking up your order…"),
    },
    {
        "name": "shipment_track",
        "description": "Carrier, tracking number and delivery estimate of an order.",
        "parameters": _schema({"order_number": ORDER_NUMBER}, ["order_number"]),
        "method": "GET",
        "path_template": "/customers/{customer.external_id}/orders/{order_number}/shipment",
        "response_fields": [
            "number",
            "status",
            "shipment.carrier",
            "shipment.tracking_number",
            "shipment.shipped_at",
            "shipment.estimated_delivery",
            "shipment.delivered_at",
            "shipment.tracking_url",
        ],
        "progress_text": _("Tracking your parcel…"),
    },
    {
        "name": "stock_check",
        "description": "Whether products are in stock, by product name or SKU.",
        "parameters": _schema({"query": {"type": "string", "minLength": 2, "maxLength": 100}}, ["query"]),
        "method": "GET",
        "path_template": "/stock",
        "query_map": {"q": "{query}"},
        "response_fields": [
            "products.sku",
            "products.name",
            "products.price",
            "products.in_stock",
            "products.stock",
        ],
        "progress_text": _("Checking stock…"),
    },
    {
        "name": "ticket_create",
        "description": "Open a support ticket for the customer (asks the customer first).",
        "parameters": _schema(
            {
                "subject": {"type": "string", "minLength": 3, "maxLength": 200},
                "body": {"type": "string", "maxLength": 4000},
            },
            ["subject"],
        ),
        "method": "POST",
        "path_template": "/customers/{customer.external_id}/tickets",
        # No {customer.email}: the CRM knows the customer by id, and a tool sending the e-mail
        # would refuse customers whose e-mail was never verified.
        "body_map": {"subject": "{subject}", "body": "{body}"},
        "response_fields": ["id", "subject", "status", "created_at"],
        "requires_confirmation": True,
        "confirmation_template": _("Open a support ticket: “{subject}”?"),
        "progress_text": _("Opening a ticket…"),
    },
    {
        "name": "ticket_status",
        "description": "Status of one of the customer's support tickets.",
        "parameters": _schema(
            {"ticket_id": {"type": "string", "pattern": "^[Tt]-[0-9]{3,8}$"}}, ["ticket_id"]
        ),
        "method": "GET",
        "path_template": "/customers/{customer.external_id}/tickets/{ticket_id}",
        "response_fields": ["id", "subject", "status", "created_at"],
        "progress_text": _("Looking up your ticket…"),
    },
    {
        "name": "refund_request",
        "description": "Request a refund for a shipped or delivered order (asks first).",
        "parameters": _schema(
            {"order_number": ORDER_NUMBER, "reason": {"type": "string", "maxLength": 500}}, ["order_number"]
        ),
        "method": "POST",
        "path_template": "/customers/{customer.external_id}/orders/{order_number}/refunds",
        "body_map": {"reason": "{reason}"},
        "response_fields": ["id", "order", "amount", "currency", "status"],
        "requires_confirmation": True,
        "confirmation_template": _("Request a refund for order {order_number}?"),
        "progress_text": _("Requesting your refund…"),
    },
    {
        "name": "order_cancel",
        "description": "Cancel an order that has not shipped yet (asks first).",
        "parameters": _schema(
            {"order_number": ORDER_NUMBER, "reason": {"type": "string", "maxLength": 500}}, ["order_number"]
        ),
        "method": "POST",
        "path_template": "/customers/{customer.external_id}/orders/{order_number}/cancel",
        "body_map": {"reason": "{reason}"},
        "response_fields": ["number", "status", "refund_amount", "currency"],
        "requires_confirmation": True,
        "confirmation_template": _("Cancel order {order_number}?"),
        "progress_text": _("Cancelling your order…"),
    },
]


@transaction.atomic
def demo_connectors_setup(*, base_url: str | None = None) -> Connector:
    """Create or update the `demo-crm` connector and its tools (idempotent)."""
    connector, _ = Connector.objects.update_or_create(
        slug="demo-crm",
        defaults={
            "name": "Demo CRM",
            "base_url": base_url or settings.DEMO_CRM_URL,
            "auth_type": AuthType.BEARER,
            "secret": settings.DEMO_CRM_TOKEN,
            "connect_timeout_s": 2.0,
            "read_timeout_s": 5.0,
            "max_attempts": 3,
            "enabled": True,
        },
    )
    for spec in DEMO_TOOLS:
        Tool.objects.update_or_create(
            connector=connector, name=spec["name"], defaults={k: v for k, v in spec.items() if k != "name"}
        )
    return connector
