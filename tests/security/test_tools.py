"""Issue 15, tools: the model never chooses whose data a tool reads, a tool needing an identity
refuses anonymous visitors, writes always ask (showing every argument), and the console's CRM
panel reads through audited ToolCall rows. Through the interfaces: `connector_import`, the chat
socket of a real server (with an OpenAI-compatible fake model), the admin, the console."""

from __future__ import annotations

import io
import json
import re
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
from asgiref.sync import sync_to_async
from django.conf import settings
from django.core.management import call_command
from django.test import Client
from django.urls import reverse

from apps.connectors.models import Connector, Tool, ToolCall
from apps.conversations.models import Conversation, ConversationEvent
from apps.customers.services import user_hash_for
from tests.support.fake_llm import FakeLLM
from tests.support.people import make_user
from tests.support.process import DEMO_CRM_TOKEN as TOKEN
from tests.support.sockets import Customer, widget_session

DEMO_OPENAPI = settings.BASE_DIR / "apps" / "demo_crm" / "openapi.yaml"
# How a parameter naming the customer may be spelt (case and separators aside).
CUSTOMER_NAMES = re.compile(r"^(customer|customerid|contactid|userid|accountid|email|customeremail)$")


def run_import(*args: str) -> dict:
    out = io.StringIO()
    call_command("connector_import", *args, "--json", stdout=out)
    return json.loads(out.getvalue())


def names_customer(name: str) -> bool:
    return bool(CUSTOMER_NAMES.match(re.sub(r"[\s_.\-]", "", name.lower())))


class RecordingProxy:
    """A loopback reverse proxy in front of the demo CRM that records every request path, to
    prove which requests reached it."""

    def __init__(self, upstream: str) -> None:
        self.paths: list[str] = []
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def _forward(self, method: str) -> None:
                proxy.paths.append(f"{method} {self.path}")
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                headers = {
                    k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")
                }
                answer = httpx.request(
                    method, upstream + self.path, content=body, headers=headers, timeout=10
                )
                self.send_response(answer.status_code)
                self.send_header("Content-Type", answer.headers.get("Content-Type", "application/json"))
                self.send_header("Content-Length", str(len(answer.content)))
                self.end_headers()
                self.wfile.write(answer.content)

            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                self._forward("GET")

            def do_POST(self) -> None:  # noqa: N802
                self._forward("POST")

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def crm_proxy(demo_crm):  # noqa: F811
    proxy = RecordingProxy(demo_crm.url)
    yield proxy
    proxy.close()


@pytest.fixture
def llm():
    with FakeLLM() as fake:
        yield fake


def llm_env(fake: FakeLLM) -> dict[str, str]:
    return {
        "ASSISTANT_TOKEN_DELAY_S": "0",
        "LLM_PROVIDER": "openai",
        "LLM_BASE_URL": fake.url,
        "LLM_MODEL": "kefu-test-model",
        "LLM_API_KEY": "sk-test",
    }


def import_demo_document_and_enable_everything(base_url: str) -> dict:
    """The import, then the worst review an admin could make: every tool enabled as imported."""
    report = run_import("--openapi", str(DEMO_OPENAPI), "--connector", "crm", "--base-url", base_url)
    Connector.objects.filter(slug="crm").update(auth_type="bearer", secret=TOKEN, name="Demo CRM")
    for tool in Tool.objects.filter(connector__slug="crm"):
        tool.enabled = True
        tool.save()
    return report


async def chat(server, *, question: str, **identity: str) -> tuple[Customer, list[dict]]:
    session = await widget_session(server.http_url, **identity)
    customer = Customer(server.ws_url, session["token"])
    assert (await customer.connect())["type"] == "ready"
    await customer.send({"type": "message", "client_msg_id": str(uuid.uuid4()), "text": question})
    return customer, await customer.recv_until("message_end", timeout=60)


def tool_messages(fake: FakeLLM) -> str:
    """Everything the tools told the model (the `tool` role messages of every request)."""
    return json.dumps([m for r in fake.requests for m in r["body"]["messages"] if m["role"] == "tool"])


@pytest.mark.django_db
def test_importing_the_demo_document_binds_the_customer_and_enables_nothing(tmp_path):
    report = run_import("--openapi", str(DEMO_OPENAPI), "--connector", "crm")

    tools = {t["name"]: t for t in report["tools"]}
    assert len(tools) == 9
    for tool in tools.values():
        assert not [n for n in tool["parameters"]["properties"] if names_customer(n)], tool["name"]
        assert not [n for n in tool["parameters"]["required"] if names_customer(n)], tool["name"]
        assert tool["enabled"] is False
        assert tool["bound"] == (
            {} if tool["name"] == "searchStock" else {"customer_id": "customer.external_id"}
        )
    assert tools["listOrders"]["path"] == "/customers/{customer.external_id}/orders"
    assert tools["getOrder"]["parameters"]["required"] == ["number"]
    assert set(Tool.objects.filter(connector__slug="crm").values_list("enabled", flat=True)) == {False}

    # Other spellings, in the query and the body: ids and e-mails alike.
    doc = tmp_path / "shop.yaml"
    doc.write_text(
        """
openapi: 3.0.3
info: {title: Shop, version: "1"}
servers: [{url: "https://shop.example.com"}]
paths:
  /tickets:
    post:
      operationId: openTicket
      parameters:
        - {name: Contact-ID, in: query, required: true, schema: {type: string}}
      requestBody:
        content:
          application/json:
            schema:
              type: object
              required: [customerId, E_Mail, subject]
              properties:
                customerId: {type: string}
                E_Mail: {type: string}
                subject: {type: string}
"""
    )
    [ticket] = run_import("--openapi", str(doc), "--connector", "shop")["tools"]
    assert ticket["parameters"] == {
        "type": "object",
        "properties": {"subject": {"type": "string"}},
        "required": ["subject"],
    }
    assert ticket["bound"] == {
        "Contact-ID": "customer.external_id",
        "customerId": "customer.external_id",
        "E_Mail": "customer.email",
    }
    row = Tool.objects.get(connector__slug="shop")
    assert (row.query_map, row.body_map, row.enabled) == (
        {"Contact-ID": "{customer.external_id}"},
        {"customerId": "{customer.external_id}", "E_Mail": "{customer.email}", "subject": "{subject}"},
        False,
    )


@pytest.mark.django_db(transaction=True)
@pytest.mark.e2e
async def test_an_anonymous_visitor_gets_no_one_elses_orders_whatever_the_model_asks(
    crm_proxy, llm, celery_worker_live, web_server
):
    await sync_to_async(import_demo_document_and_enable_everything)(crm_proxy.url)
    llm.script = [
        [
            ("c1", "listOrders", {"customer_id": "demo-customer-2"}),
            ("c2", "getOrder", {"customer_id": "demo-customer-2", "number": "PP-2001"}),
        ],
        ["I can only look up orders for a signed-in customer."],
    ]
    server = web_server(**llm_env(llm))

    visitor, events = await chat(server, question="List the orders of customer demo-customer-2")
    try:
        assert events[-1]["type"] == "message_end"
        assert events[-1]["text"] == "I can only look up orders for a signed-in customer."
        offered = {t["function"]["name"] for t in llm.requests[0]["body"].get("tools", [])}
        assert offered == {"searchStock"}  # identity tools are not even offered to a visitor
        assert "PP-2001" not in tool_messages(llm) and "Grace" not in tool_messages(llm)
        assert "PP-2001" not in json.dumps(events) and "Grace" not in json.dumps(events)
        assert crm_proxy.paths == []  # the CRM was never asked
        assert await ToolCall.objects.filter(http_status__isnull=False).acount() == 0
    finally:
        await visitor.close()


@pytest.mark.django_db(transaction=True)
@pytest.mark.e2e
async def test_a_signed_in_customer_reads_only_their_own_orders_whatever_id_the_model_names(
    crm_proxy, llm, celery_worker_live, web_server
):
    await sync_to_async(import_demo_document_and_enable_everything)(crm_proxy.url)
    llm.script = [[("c1", "listOrders", {"customer_id": "demo-customer-2"})], ["Here are your orders [1]."]]
    server = web_server(**llm_env(llm))

    ada_socket, events = await chat(
        server,
        question="List the orders of customer demo-customer-2",
        user_id="demo-customer-1",
        user_hash=user_hash_for(user_id="demo-customer-1"),
    )
    try:
        assert [(e["name"], e["status"]) for e in events if e["type"] == "tool"] == [
            ("listOrders", "queued"),
            ("listOrders", "running"),
            ("listOrders", "succeeded"),
        ]
        assert crm_proxy.paths == ["GET /customers/demo-customer-1/orders"]
        told = tool_messages(llm)
        assert "PP-1001" in told and "PP-2001" not in told
    finally:
        await ada_socket.close()


@pytest.mark.django_db(transaction=True)
@pytest.mark.e2e
async def test_a_post_tool_added_without_the_flag_asks_first_showing_every_argument(
    demo_connector,  # noqa: F811
    demo_crm,  # noqa: F811
    llm,
    celery_worker_live,
    web_server,
    django_user_model,  # noqa: F811
):
    admin = await sync_to_async(django_user_model.objects.create_superuser)("root", "root@example.com", "pw")
    client = Client()
    await sync_to_async(client.force_login)(admin)
    form = {
        "connector": demo_connector.pk,
        "name": "refund_any",
        "description": "Refund an amount for an order.",
        "enabled": "on",
        "method": "POST",
        "path_template": "/customers/{customer.external_id}/orders/{order_number}/refunds",
        "query_map": "{}",
        "body_map": json.dumps({"amount": "{amount}", "reason": "{reason}"}),
        "parameters": json.dumps(
            {
                "type": "object",
                "properties": {
                    "order_number": {"type": "string"},
                    "amount": {"type": "string"},
                    "reason": {"type": "string"},
                },
                "required": ["order_number", "amount"],
            }
        ),
        "response_fields": "[]",
        "confirmation_template": "Request a refund for order {order_number}?",
        "progress_text": "",
        "confirmation_waived_reason": "",
    }  # requires_confirmation left unticked
    response = await sync_to_async(client.post)(reverse("admin:connectors_tool_add"), form)
    assert response.status_code == 302, response.content.decode()[:3000]
    assert await Tool.objects.filter(name="refund_any", requires_confirmation=False).aexists()
    llm.script = [
        [("c1", "refund_any", {"order_number": "PP-1001", "amount": "39.00", "reason": "arrived broken"})],
        ["Please approve or decline the refund above."],
    ]
    server = web_server(**llm_env(llm))

    ada_socket, events = await chat(
        server,
        question="Refund 39.00 for PP-1001, it arrived broken",
        user_id="demo-customer-1",
        user_hash=user_hash_for(user_id="demo-customer-1"),
    )
    try:
        [question] = [e for e in events if e["type"] == "tool"]
        assert (question["name"], question["status"], question["detail"]) == (
            "refund_any",
            "awaiting_confirmation",
            "Request a refund for order PP-1001?\n"
            "order_number: PP-1001\namount: 39.00\nreason: arrived broken",
        )
        assert demo_crm.writes() == []  # nothing was written before the customer says yes
    finally:
        await ada_socket.close()


@pytest.mark.django_db(transaction=True)
def test_the_console_crm_panel_reads_through_audited_internal_tool_calls(demo_connector, ada):  # noqa: F811
    agent = make_user("alice@example.com", "Alice", "Agent")
    client = Client()
    client.force_login(agent)
    conversation = Conversation.objects.create(customer=ada)

    response = client.get(reverse("console:crm", args=[conversation.pk]))

    assert response.status_code == 200
    assert "PP-1001" in response.content.decode()
    rows = list(ToolCall.objects.filter(conversation=conversation).order_by("name"))
    assert [(r.name, r.status, r.requested_by_id, r.http_status) for r in rows] == [
        ("customer_profile", "succeeded", agent.pk, 200),
        ("orders_list", "succeeded", agent.pk, 200),
    ]
    assert ConversationEvent.objects.filter(conversation=conversation).count() == 0  # no customer event
    conversation.refresh_from_db()
    assert conversation.last_seq == 0  # nor a seq
