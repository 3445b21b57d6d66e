"""The console's customer panel reads the customer's CRM record through the connector tools,
from the real demo CRM over HTTP, scoped to the conversation's customer."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from apps.conversations.models import Conversation
from tests.support.factories import CustomerFactory
from tests.support.people import make_user

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def signed_in(transactional_db) -> Client:
    client = Client()
    client.force_login(make_user("alice@example.com", "Alice", "Agent"))
    return client


def panel(client: Client, conversation: Conversation):
    return client.get(reverse("console:crm", args=[conversation.pk]))


def test_the_panel_shows_adas_profile_and_orders_from_the_crm(signed_in, demo_connector, ada):  # noqa: F811
    response = panel(signed_in, Conversation.objects.create(customer=ada))

    assert response.status_code == 200
    html = response.content.decode()
    assert "Customer profile" in html and "Orders list" in html and "Demo CRM" in html
    assert "ada@example.com" in html
    # Ada's orders, newest first, each on a line with its status, date and total.
    assert "<li><b>PP-1002</b> · processing · 2026-11-26 · 89.00 · EUR</li>" in html
    assert "<li><b>PP-1001</b> · shipped · 2026-11-20 · 39.00 · EUR</li>" in html
    assert "PP-2001" not in html and "Grace" not in html  # nobody else's record


def test_a_customer_the_crm_does_not_know_is_said_plainly(signed_in, demo_connector):  # noqa: F811
    stranger = CustomerFactory(external_id="no-such-customer", name="Stranger", email="s@example.com")

    html = panel(signed_in, Conversation.objects.create(customer=stranger)).content.decode()

    assert "Demo CRM has no record of this customer." in html


def test_an_anonymous_visitor_has_no_crm_record(signed_in, demo_connector, anonymous_customer):  # noqa: F811
    html = panel(signed_in, Conversation.objects.create(customer=anonymous_customer)).content.decode()

    assert "An anonymous visitor: no CRM record to show." in html
    assert "Customer profile" not in html


def test_a_failing_crm_is_a_message_in_the_panel_not_an_error_page(signed_in, demo_connector, demo_crm, ada):  # noqa: F811
    demo_crm.faults(mode="500", error_rate=1.0)

    response = panel(signed_in, Conversation.objects.create(customer=ada))

    assert response.status_code == 200
    assert response.content.decode().count("Demo CRM could not be reached just now.") == 2


def test_only_staff_see_the_panel(demo_connector, ada):  # noqa: F811
    conversation = Conversation.objects.create(customer=ada)
    assert panel(Client(), conversation).status_code == 302  # to the login page
    shopper = Client()
    shopper.force_login(make_user("shopper@example.com", "Sam", "Shopper", staff=False))
    assert panel(shopper, conversation).status_code == 403


def test_an_unknown_conversation_is_404(signed_in):
    response = signed_in.get(reverse("console:crm", args=["00000000-0000-0000-0000-000000000000"]))
    assert response.status_code == 404
