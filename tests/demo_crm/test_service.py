"""The demo CRM/ERP over HTTP: seed data (PROTOCOL.md §6), scoping, idempotent writes, faults,
signed webhooks."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
from standardwebhooks.webhooks import Webhook

from tests.support.process import DEMO_CRM_TOKEN as TOKEN
from tests.support.process import demo_crm_start

AUTH = {"Authorization": f"Bearer {TOKEN}"}


def test_seed_data_per_protocol(demo_crm):
    ada = demo_crm.get("/customers/demo-customer-1").json()
    assert (ada["name"], ada["email"]) == ("Ada Lovelace", "ada@example.com")
    orders = demo_crm.get("/customers/demo-customer-1/orders").json()["orders"]
    assert [(o["number"], o["status"]) for o in orders] == [("PP-1002", "processing"), ("PP-1001", "shipped")]
    shipment = demo_crm.get("/customers/demo-customer-1/orders/PP-1001/shipment").json()["shipment"]
    assert (shipment["carrier"], shipment["tracking_number"]) == ("DHL", "00340434161234567890")
    grace = demo_crm.get("/customers/demo-customer-2/orders/PP-2001").json()
    assert grace["status"] == "delivered"
    assert [(line["sku"], line["quantity"], line["unit_price"]) for line in grace["lines"]] == [
        ("KETTLE-03", 2, "64.00"),
        ("MUG-02", 2, "12.50"),
    ]


def test_another_customers_order_does_not_exist_for_you(demo_crm):
    response = demo_crm.get("/customers/demo-customer-1/orders/PP-2001")
    assert response.status_code == 404
    assert "Grace" not in response.text and "delivered" not in response.text


def test_requests_need_the_bearer_token(demo_crm):
    assert demo_crm.get("/customers/demo-customer-1", token="wrong").status_code == 401


def test_a_write_repeated_with_its_idempotency_key_happens_once(demo_crm):
    url = f"{demo_crm.url}/customers/demo-customer-1/orders/PP-1001/refunds"
    headers = {**AUTH, "Idempotency-Key": "k-1"}
    first = httpx.post(url, json={"reason": "broken"}, headers=headers)
    second = httpx.post(url, json={"reason": "broken"}, headers=headers)
    assert first.status_code == second.status_code == 201
    assert first.json() == second.json()
    assert first.json()["amount"] == "39.00"
    assert demo_crm.writes("k-1") == [{"key": "k-1", "requests": 2, "effects": 1}]


def test_faults_set_at_run_time(demo_crm):
    demo_crm.faults(mode="500", times=1)
    assert demo_crm.get("/customers/demo-customer-1").status_code == 500
    assert demo_crm.get("/customers/demo-customer-1").status_code == 200
    demo_crm.faults(mode="malformed", times=1)
    response = demo_crm.get("/customers/demo-customer-1")
    assert response.status_code == 200 and response.text == '{"number": "PP-10'
    demo_crm.faults(mode="429", times=1)
    response = demo_crm.get("/stock?q=lamp")
    assert (response.status_code, response.headers["Retry-After"]) == (429, "1")
    demo_crm.faults(mode="500", error_rate=0.0)
    assert demo_crm.get("/stock?q=lamp").json()["products"][0]["in_stock"] is True


def test_shipping_an_order_sends_a_signed_standard_webhook(tmp_path):
    received: list[tuple[dict, dict]] = []
    got = threading.Event()

    class Kefu(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append((dict(self.headers), body))
            self.send_response(202)
            self.send_header("Content-Length", "0")
            self.end_headers()
            got.set()

        def log_message(self, *args):
            pass

    kefu = ThreadingHTTPServer(("127.0.0.1", 0), Kefu)
    threading.Thread(target=kefu.serve_forever, daemon=True).start()
    secret = "whsec_dGVzdC1zZWNyZXQtZm9yLWRlbW8tY3JtLXdlYmhvb2tz"
    crm = demo_crm_start(
        tmp_path / "crm.log",
        DEMO_CRM_KEFU_URL=f"http://127.0.0.1:{kefu.server_address[1]}",
        DEMO_WEBHOOK_SECRET=secret,
    )
    try:
        crm.admin("POST", "orders/PP-1002/ship")
        assert got.wait(10)
    finally:
        crm.proc.terminate()
        crm.proc.wait(10)
        kefu.shutdown()
    headers, body = received[0]
    event = Webhook(secret).verify(body, {k.lower(): v for k, v in headers.items()})
    assert event["type"] == "order.shipped"
    assert event["data"]["customer"] == {"external_id": "demo-customer-1", "email": "ada@example.com"}
    assert event["data"]["order"]["number"] == "PP-1002"
    assert event["data"]["order"]["status"] == "shipped"
    assert json.loads(body)["data"]["order"]["shipment"]["carrier"] == "DHL"
    assert len(received) == 1
