"""Fixtures for webhook tests: the demo CRM source, its customer, Standard-Webhooks signing."""

from __future__ import annotations

import pytest

from apps.customers.models import Customer
from apps.webhooks.models import WebhookSource
from apps.webhooks.outgoing import outgoing_cache_clear
from apps.webhooks.services import webhook_source_demo_ensure
from tests.support.factories import CustomerFactory


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
