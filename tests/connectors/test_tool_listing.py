"""The tools a turn is offered (`toolbox_of`, one plain statement per claim): only enabled tools
of enabled connectors, the first of a name by connector slug, and nothing a customer has not
proved the identity for: an anonymous visitor, or a typed e-mail, cannot get another
customer's data through a tool the model is offered."""

import uuid

import pytest

from apps.connectors.models import Connector, Tool
from apps.connectors.toolbox import toolbox_of
from apps.customers.models import Customer

pytestmark = pytest.mark.django_db


@pytest.fixture
def catalogue():
    crm = Connector.objects.create(slug="a-crm", name="CRM", base_url="http://127.0.0.1:9/")
    erp = Connector.objects.create(slug="b-erp", name="ERP", base_url="http://127.0.0.1:9/")
    off = Connector.objects.create(slug="c-off", name="Off", base_url="http://127.0.0.1:9/", enabled=False)
    Tool.objects.create(connector=crm, name="faq", description="Search the FAQ", path_template="/faq",
                        parameters={"type": "object", "properties": {"q": {"type": "string"}}})
    Tool.objects.create(connector=crm, name="my_orders",
                        path_template="/customers/{customer.external_id}/orders")
    Tool.objects.create(connector=crm, name="my_profile", path_template="/profile",
                        query_map={"email": "{customer.email}"})
    Tool.objects.create(connector=crm, name="retired", path_template="/old", enabled=False)
    Tool.objects.create(connector=erp, name="faq", description="the ERP's, shadowed", path_template="/erp")
    Tool.objects.create(connector=erp, name="stock", path_template="/stock/{sku}", body_map={"n": 1})
    Tool.objects.create(connector=off, name="secrets", path_template="/secrets")


def offered(customer: Customer):
    box = toolbox_of(conversation_id=str(uuid.uuid4()), customer=customer, turn_id="", language="en")
    return {spec["name"]: spec for spec in box.specs()}, box.withheld()


def test_an_anonymous_visitor_is_offered_no_tool_that_reads_a_customer(catalogue):
    specs, withheld = offered(Customer.objects.create())
    assert set(specs) == {"faq", "stock"}
    assert withheld == {"my_orders", "my_profile"}


def test_a_typed_email_does_not_unlock_the_tool_that_sends_it(catalogue):
    customer = Customer.objects.create(external_id="ada", email="grace@example.com", email_verified=False)
    specs, withheld = offered(customer)
    assert set(specs) == {"faq", "my_orders", "stock"}
    assert withheld == {"my_profile"}


def test_a_verified_customer_gets_every_enabled_tool_and_nothing_disabled(catalogue):
    customer = Customer.objects.create(external_id="ada", email="ada@example.com", email_verified=True)
    specs, withheld = offered(customer)
    assert set(specs) == {"faq", "my_orders", "my_profile", "stock"}  # not "retired", not "secrets"
    assert withheld == set()


def test_the_first_tool_of_a_name_by_connector_is_offered_with_its_schema(catalogue):
    specs, _ = offered(Customer.objects.create())
    assert specs["faq"]["description"] == "Search the FAQ"
    assert specs["faq"]["parameters"] == {"type": "object", "properties": {"q": {"type": "string"}}}
    assert specs["stock"]["parameters"] == {"type": "object", "properties": {}}  # none stored


def test_no_enabled_tool_means_no_toolbox(catalogue):
    Tool.objects.update(enabled=False)
    customer = Customer.objects.create()
    assert toolbox_of(conversation_id=str(uuid.uuid4()), customer=customer, turn_id="", language="en") is None
