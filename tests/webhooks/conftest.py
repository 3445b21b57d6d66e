"""Fixtures for webhook tests: the demo CRM source, its customer, Standard-Webhooks signing."""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from django.conf import settings
from standardwebhooks.webhooks import Webhook

from apps.customers.models import Customer
from apps.webhooks.models import WebhookSource
from apps.webhooks.outgoing import outgoing_cache_clear
from apps.webhooks.services import webhook_source_demo_ensure
from tests.customers.factories import CustomerFactory

SHARED_FIXTURES = settings.BASE_DIR.parent / "shared" / "fixtures" / "webhooks"


def signed(
    body: bytes | str | dict[str, Any],
    *,
    secret: str | None = None,
    msg_id: str | None = None,
    timestamp: float | None = None,
) -> tuple[bytes, dict[str, str]]:
    """A body and the Standard Webhooks headers a sender with `secret` would send."""
    if isinstance(body, dict):
        body = json.dumps(body)
    raw = body.encode() if isinstance(body, str) else body
    msg_id = msg_id or f"msg_{uuid.uuid4().hex}"
    when = datetime.fromtimestamp(time.time() if timestamp is None else timestamp, tz=UTC)
    signature = Webhook(secret or settings.DEMO_WEBHOOK_SECRET).sign(msg_id, when, raw.decode())
    return raw, {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(when.timestamp())),
        "webhook-signature": signature,
    }


def shipped(external_id: str = "crm-123", order_id: str = "PP-1002", **customer: str) -> dict[str, Any]:
    return {
        "type": "order.shipped",
        "data": {
            "customer": {"external_id": external_id, **customer},
            "order": {"id": order_id, "tracking_number": "1Z999"},
        },
    }


@pytest.fixture
def demo_source(db) -> WebhookSource:
    return webhook_source_demo_ensure()


@pytest.fixture
def crm_customer(db) -> Customer:
    return CustomerFactory(name="Ada Lovelace", external_id="crm-123", email="ada@example.com")


@pytest.fixture(autouse=True)
def _fresh_outgoing_cache():
    outgoing_cache_clear()
    yield
    outgoing_cache_clear()
