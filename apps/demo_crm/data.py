"""The demo CRM/ERP's seed data (PROTOCOL.md §6). Fresh copy per `seed()`."""

from __future__ import annotations

import copy
from typing import Any

_CUSTOMERS = {
    "demo-customer-1": {
        "external_id": "demo-customer-1",
        "name": "Ada Lovelace",
        "email": "ada@example.com",
        "tier": "gold",
        "since": "2021-03-14",
    },
    "demo-customer-2": {
        "external_id": "demo-customer-2",
        "name": "Grace Hopper",
        "email": "grace@example.com",
        "tier": "standard",
        "since": "2023-09-01",
    },
}

_PRODUCTS = {
    "LAMP-01": {"sku": "LAMP-01", "name": "Brass desk lamp", "price": "39.00", "stock": 12},
    "MUG-02": {"sku": "MUG-02", "name": "Stoneware mug", "price": "12.50", "stock": 0},
    "KETTLE-03": {"sku": "KETTLE-03", "name": "Copper kettle", "price": "64.00", "stock": 3},
    "BLANKET-04": {"sku": "BLANKET-04", "name": "Wool blanket", "price": "89.00", "stock": 7},
}


def _line(sku: str, quantity: int) -> dict[str, Any]:
    p = _PRODUCTS[sku]
    return {"sku": sku, "name": p["name"], "quantity": quantity, "unit_price": p["price"]}


_ORDERS = {
    "PP-1001": {
        "number": "PP-1001",
        "customer": "demo-customer-1",
        "status": "shipped",
        "placed_at": "2026-11-20",
        "currency": "EUR",
        "total": "39.00",
        "lines": [_line("LAMP-01", 1)],
        "shipment": {
            "carrier": "DHL",
            "tracking_number": "00340434161234567890",
            "shipped_at": "2026-11-23",
            "estimated_delivery": "2026-11-30",
            "tracking_url": "https://www.dhl.com/track?id=00340434161234567890",
        },
    },
    "PP-1002": {
        "number": "PP-1002",
        "customer": "demo-customer-1",
        "status": "processing",
        "placed_at": "2026-11-26",
        "currency": "EUR",
        "total": "89.00",
        "lines": [_line("BLANKET-04", 1)],
        "shipment": None,
    },
    "PP-2001": {
        "number": "PP-2001",
        "customer": "demo-customer-2",
        "status": "delivered",
        "placed_at": "2026-11-02",
        "currency": "EUR",
        "total": "153.00",
        "lines": [_line("KETTLE-03", 2), _line("MUG-02", 2)],
        "shipment": {
            "carrier": "UPS",
            "tracking_number": "1Z999AA10123456784",
            "shipped_at": "2026-11-04",
            "delivered_at": "2026-11-07",
            "estimated_delivery": "2026-11-07",
            "tracking_url": "https://www.ups.com/track?tracknum=1Z999AA10123456784",
        },
    },
}

_TICKETS = {
    "T-5001": {
        "id": "T-5001",
        "customer": "demo-customer-2",
        "subject": "Kettle lid is loose",
        "status": "open",
        "created_at": "2026-11-08",
        "body": "The lid of my copper kettle does not close properly.",
    },
}


def seed() -> dict[str, Any]:
    return {
        "customers": copy.deepcopy(_CUSTOMERS),
        "products": copy.deepcopy(_PRODUCTS),
        "orders": copy.deepcopy(_ORDERS),
        "tickets": copy.deepcopy(_TICKETS),
        "refunds": {},
    }
