"""`connector_import` (PROTOCOL.md §5) on GitHub's real 13 MB document and on small ones."""

from __future__ import annotations

import io
import json
import time

import jsonschema
import pytest
from django.conf import settings
from django.core.management import call_command

from apps.connectors.models import Connector, Tool
from tests.fixtures import FIXTURES

pytestmark = pytest.mark.django_db
GITHUB = settings.BASE_DIR.parent / "shared" / "fixtures" / "openapi" / "github-rest-api.json"


def run_import(*args: str) -> dict:
    out = io.StringIO()
    call_command("connector_import", *args, "--json", stdout=out)
    return json.loads(out.getvalue())


def test_github_document_imports_every_operation_self_contained():
    assert GITHUB.is_file(), f"{GITHUB} is missing (see /work/shared/fixtures/openapi/SOURCE.txt)"
    started = time.perf_counter()
    report = run_import("--openapi", str(GITHUB), "--connector", "github")
    print(f"github-rest-api.json import: {time.perf_counter() - started:.2f} s")  # reported in .notes

    assert report["connector"] == "github"
    assert (len(report["tools"]), report["skipped"]) == (1223, [])
    assert '"$ref"' not in json.dumps(report)
    for tool in report["tools"]:
        jsonschema.Draft202012Validator.check_schema(tool["parameters"])
    tools = {t["name"]: t for t in report["tools"]}
    create = tools["issues_create"]
    assert (create["method"], create["path"]) == ("POST", "/repos/{owner}/{repo}/issues")
    assert create["parameters"]["required"] == ["owner", "repo", "title"]
    assert create["parameters"]["properties"]["assignee"]["type"] == ["string", "null"]
    assert Connector.objects.get(slug="github").base_url == "https://api.github.com"
    assert Tool.objects.filter(connector__slug="github").count() == 1223
    row = Tool.objects.get(connector__slug="github", name="issues_create")
    assert (row.requires_confirmation, row.confirmation_template) == (True, "Create an issue?")
    assert row.body_map["title"] == "{title}"
    assert Tool.objects.get(connector__slug="github", name="issues_get").requires_confirmation is False
    # A valid call validates against the imported schema; a wrong one does not.
    jsonschema.validate({"owner": "octo", "repo": "kefu", "title": "Lamp flickers"}, create["parameters"])
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"owner": "octo", "repo": "kefu"}, create["parameters"])


def test_chosen_operations_only_and_reimport_updates_in_place():
    args = [
        "--openapi",
        str(GITHUB),
        "--connector",
        "tickets",
        "--base-url",
        "https://ghe.example.com/api/v3",
    ]
    report = run_import(*args, "--operations", "issues/create,issues/get,issues/nope")
    assert [(t["name"], t["method"]) for t in report["tools"]] == [
        ("issues_create", "POST"),
        ("issues_get", "GET"),
    ]
    assert report["skipped"] == [{"operation": "issues/nope", "reason": "no such operation in the document"}]
    Tool.objects.filter(name="issues_get").update(description="edited")
    run_import(*args, "--operations", "issues/get")
    assert Tool.objects.filter(connector__slug="tickets").count() == 2
    assert Tool.objects.get(name="issues_get").description.startswith("Get an issue")
    assert Connector.objects.get(slug="tickets").base_url == "https://ghe.example.com/api/v3"




def test_swagger_2_yaml_with_a_recursive_schema(tmp_path):
    path = tmp_path / "shop.yaml"
    path.write_text((FIXTURES / "connectors" / "tiny-shop.swagger.yaml").read_text())
    report = run_import("--openapi", str(path), "--connector", "shop")
    tools = {t["name"]: t for t in report["tools"]}
    assert sorted(tools) == ["createTicket", "getOrder"]
    assert tools["getOrder"]["parameters"] == {
        "type": "object",
        "properties": {"number": {"type": "string"}, "expand": {"type": "boolean"}},
        "required": ["number"],
    }
    category = tools["createTicket"]["parameters"]["properties"]["category"]
    assert category["properties"]["parent"] == {"type": "object", "description": "(recursive Category)"}
    assert tools["createTicket"]["parameters"]["required"] == ["subject"]
    assert tools["createTicket"]["parameters"]["properties"]["subject"] == {"type": "string"}
    assert report["skipped"] == [
        {"operation": "uploadAvatar", "reason": "form-data bodies are not supported"},
        {
            "operation": "signedThing",
            "reason": "needs the header parameter 'X-Signature', which tools cannot send",
        },
    ]
    assert Connector.objects.get(slug="shop").base_url == "https://shop.example.com/api"
    order = Tool.objects.get(name="getOrder")
    assert (order.path_template, order.query_map, order.requires_confirmation) == (
        "/orders/{number}",
        {"expand": "{expand}"},
        False,
    )
    assert Tool.objects.get(name="createTicket").confirmation_template == "Open a ticket?"


DEMO_OPENAPI = settings.BASE_DIR / "apps" / "demo_crm" / "openapi.yaml"


@pytest.mark.django_db(transaction=True)
@pytest.mark.e2e
async def test_tools_imported_from_the_demo_systems_document_run_against_it(
    demo_crm, ada, conversation_of, celery_worker_live
):
    from asgiref.sync import sync_to_async

    from tests.support.process import DEMO_CRM_TOKEN as TOKEN
    from tests.support.toolbox import box_for

    report = await sync_to_async(run_import)(
        "--openapi", str(DEMO_OPENAPI), "--connector", "crm", "--base-url", demo_crm.url
    )
    assert [t["name"] for t in report["tools"]] == [
        "getCustomer",
        "listOrders",
        "getOrder",
        "getShipment",
        "requestRefund",
        "cancelOrder",
        "createTicket",
        "getTicket",
        "searchStock",
    ]
    assert report["skipped"] == []
    # The customer is bound to the session: the model never sees an id, and nothing runs unreviewed.
    tools = {t["name"]: t for t in report["tools"]}
    assert tools["getOrder"]["path"] == "/customers/{customer.external_id}/orders/{number}"
    assert tools["getOrder"]["parameters"]["required"] == ["number"]
    assert tools["getOrder"]["bound"] == {"customer_id": "customer.external_id"}
    assert (tools["searchStock"]["bound"], {t["enabled"] for t in report["tools"]}) == ({}, {False})
    await Connector.objects.filter(slug="crm").aupdate(auth_type="bearer", secret=TOKEN, name="Demo CRM")
    await Tool.objects.filter(connector__slug="crm").aupdate(enabled=True)  # the admin's review

    box = await box_for(await sync_to_async(conversation_of)(ada))
    stock = await box.call("searchStock", {"q": "blanket"})
    order = await box.call("getOrder", {"number": "PP-1002"})

    assert (stock.status, [p["sku"] for p in stock.data["products"]]) == ("succeeded", ["BLANKET-04"])
    assert (order.status, order.data["status"], order.source) == ("succeeded", "processing", "Demo CRM")
    assert (
        await box.call("requestRefund", {"customer_id": "demo-customer-1", "number": "PP-1001"})
    ).status == ("awaiting_confirmation")


def test_reimport_keeps_a_review_only_while_the_request_is_unchanged(tmp_path):
    doc = tmp_path / "crm.yaml"
    doc.write_text(DEMO_OPENAPI.read_text())
    args = ["--openapi", str(doc), "--connector", "crm"]
    run_import(*args)
    Tool.objects.filter(name__in=["getOrder", "searchStock"]).update(enabled=True)
    Tool.objects.filter(name="createTicket").update(confirmation_waived_reason="tickets are harmless")

    again = {t["name"]: t["enabled"] for t in run_import(*args)["tools"]}
    assert (again["getOrder"], again["searchStock"], again["listOrders"]) == (True, True, False)

    doc.write_text(DEMO_OPENAPI.read_text().replace("name: q, in: query", "name: query, in: query"))
    doc.write_text(
        doc.read_text().replace(
            "subject: {type: string, minLength: 3", "subject: {type: string, minLength: 4"
        )
    )
    changed = {t["name"]: t["enabled"] for t in run_import(*args)["tools"]}
    assert (changed["getOrder"], changed["searchStock"]) == (True, False)  # a new shape: review again
    assert Tool.objects.get(name="createTicket").confirmation_waived_reason == ""
