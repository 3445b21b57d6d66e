"""Customers and staff: helpers that sign them in (a widget token, a session cookie) and the
fixtures that create them."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from apps.conversations.models import Conversation
from apps.customers.models import Customer
from apps.customers.services import customer_identified_get_or_create
from apps.customers.tokens import widget_token_issue
from tests.support.factories import CustomerFactory


def token_for(customer: Customer) -> str:
    return widget_token_issue(customer_id=customer.pk)[0]


def make_user(username: str, first: str, last: str, *, staff: bool = True) -> Any:
    return get_user_model().objects.create_user(
        username=username, email=username, password="pw", first_name=first, last_name=last, is_staff=staff
    )


def session_cookie(user: Any) -> str:
    client = Client()
    client.force_login(user)
    return client.cookies["sessionid"].value


@pytest.fixture
def customer(transactional_db) -> Customer:
    return CustomerFactory(name="Ada")


@pytest.fixture
def other_customer(transactional_db) -> Customer:
    return CustomerFactory(name="Grace")


@pytest.fixture
def ada(transactional_db) -> Customer:
    """The demo CRM's customer 1, identified."""
    return customer_identified_get_or_create(
        external_id="demo-customer-1", name="Ada Lovelace", email="ada@example.com"
    )


@pytest.fixture
def anonymous_customer(transactional_db) -> Customer:
    return CustomerFactory(external_id=None)


@pytest.fixture
def conversation_of():
    def make(customer) -> Conversation:
        return Conversation.objects.create(customer=customer)

    return make


@pytest.fixture
def agent(transactional_db) -> Any:
    return make_user("alice@example.com", "Alice", "Agent")


@pytest.fixture
def other_agent(transactional_db) -> Any:
    return make_user("bob@example.com", "Bob", "Agent")


@pytest.fixture
def shopper(transactional_db) -> Any:
    """Signed in to the site, but not staff."""
    return make_user("shopper@example.com", "Sam", "Shopper", staff=False)
