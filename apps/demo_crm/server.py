"""The demo CRM/ERP's HTTP API (stdlib only, one thread per request).

Customer endpoints need the token DEMO_CRM_TOKEN as `Authorization: Bearer <token>`, or
`X-API-Key: <token>`, or basic auth `kefu:<token>`, or a bearer token from
`POST /oauth/token` (OAuth2 client credentials, client `kefu-client`, secret <token>):
    GET  /customers/{id}                         profile
    GET  /customers/{id}/orders                  orders, newest first
    GET  /customers/{id}/orders/{number}         one order with lines (404 if it is not theirs)
    GET  /customers/{id}/orders/{number}/shipment
    POST /customers/{id}/orders/{number}/refunds {"reason"}      (Idempotency-Key)
    POST /customers/{id}/orders/{number}/cancel  {"reason"}      (Idempotency-Key)
    POST /customers/{id}/tickets                 {"subject", "body"}  (Idempotency-Key)
    GET  /customers/{id}/tickets/{ticket_id}
    GET  /stock?q=words                          products matching, with stock
Operator endpoints (no auth; loopback demo only):
    POST /_admin/faults   {"delay_ms", "error_rate", "mode": "500"|"429"|"timeout"|"malformed"|null,
                           "times": N (next N requests; omitted = until changed), "path_prefix"}
    GET  /_admin/writes[?key=K]   requests received and side effects done per Idempotency-Key
    POST /_admin/orders/{number}/ship   ships an order and sends the signed `order.shipped` webhook
    POST /_admin/reset
"""

from __future__ import annotations

import base64
import json
import logging
import random
import re
import threading
import time
import uuid
from datetime import date
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from . import webhooks
from .data import seed

logger = logging.getLogger("demo_crm")


class HttpError(Exception):
    def __init__(self, status: int, error: str, message: str) -> None:
        super().__init__(message)
        self.status, self.body = status, {"error": error, "message": message}


class DemoCRM:
    """The service's state: data, injected faults, per-key write counts."""

    def __init__(self, *, token: str, webhook_url: str = "", webhook_secret: str = "") -> None:
        self.token, self.webhook_url, self.webhook_secret = token, webhook_url, webhook_secret
        self.lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self.lock:
            self.data = seed()
            self.faults: dict[str, Any] = {}
            self.requests_by_key: dict[str, int] = {}
            self.effects_by_key: dict[str, int] = {}
            self.responses_by_key: dict[str, tuple[int, dict[str, Any]]] = {}
            self.webhooks_sent: list[dict[str, Any]] = []
            self.oauth_tokens: set[str] = set()

    # -- auth -----------------------------------------------------------------------------
    def authorized(self, headers) -> bool:
        auth = headers.get("Authorization", "")
        basic = "Basic " + base64.b64encode(f"kefu:{self.token}".encode()).decode()
        return (
            auth in (f"Bearer {self.token}", basic)
            or headers.get("X-API-Key") == self.token
            or (auth.startswith("Bearer ") and auth[7:] in self.oauth_tokens)
        )

    def oauth_token(self, auth: str, raw: bytes) -> tuple[int, dict[str, Any]]:
        client = "Basic " + base64.b64encode(f"kefu-client:{self.token}".encode()).decode()
        if auth != client or parse_qs(raw.decode()).get("grant_type") != ["client_credentials"]:
            return 401, {"error": "invalid_client"}
        token = f"oat-{uuid.uuid4().hex}"
        with self.lock:
            self.oauth_tokens.add(token)
        return 200, {"access_token": token, "token_type": "bearer", "expires_in": 300}

    # -- faults ---------------------------------------------------------------------------
    def fault_for(self, path: str) -> tuple[float, str | None]:
        """(delay in s, failure mode or None) for this request, consuming a `times` budget."""
        with self.lock:
            f = self.faults
            if not f or not path.startswith(f.get("path_prefix") or "/"):
                return 0.0, None
            if f.get("times") is not None:
                if f["times"] <= 0:
                    return 0.0, None
                f["times"] -= 1
            mode = f.get("mode")
            if mode and random.random() >= float(f.get("error_rate", 1.0)):
                mode = None
            return float(f.get("delay_ms", 0)) / 1000, mode

    # -- writes ---------------------------------------------------------------------------
    def write(self, key: str | None, effect) -> tuple[int, dict[str, Any]]:
        """Do `effect()` once per Idempotency-Key; a repeat gets the first answer back."""
        with self.lock:
            if key:
                if key in self.responses_by_key:
                    return self.responses_by_key[key]
            response = (201, effect())
            if key:
                self.effects_by_key[key] = self.effects_by_key.get(key, 0) + 1
                self.responses_by_key[key] = response
            return response

    # -- customer API ---------------------------------------------------------------------
    def customer(self, cid: str) -> dict[str, Any]:
        found = self.data["customers"].get(cid)
        if not found:
            raise HttpError(404, "customer_not_found", f"No customer {cid}.")
        return found

    def order(self, cid: str, number: str) -> dict[str, Any]:
        self.customer(cid)
        found = self.data["orders"].get(number.upper())
        if not found or found["customer"] != cid:  # another customer's order does not exist for you
            raise HttpError(404, "order_not_found", f"No order {number} for this customer.")
        return found

    def orders(self, cid: str) -> dict[str, Any]:
        self.customer(cid)
        mine = [o for o in self.data["orders"].values() if o["customer"] == cid]
        mine.sort(key=lambda o: o["placed_at"], reverse=True)
        return {
            "orders": [
                {k: o[k] for k in ("number", "status", "placed_at", "total", "currency")} for o in mine
            ]
        }

    def refund(self, cid: str, number: str, body: dict[str, Any]) -> dict[str, Any]:
        order = self.order(cid, number)
        if order["status"] not in ("shipped", "delivered"):
            raise HttpError(409, "not_refundable", f"Order {number} is {order['status']}; cancel it instead.")
        refund = {
            "id": f"RF-{len(self.data['refunds']) + 7001}",
            "order": order["number"],
            "amount": order["total"],
            "currency": order["currency"],
            "status": "requested",
            "reason": str(body.get("reason", ""))[:500],
            "created_at": date.today().isoformat(),
        }
        self.data["refunds"][refund["id"]] = refund
        return refund

    def cancel(self, cid: str, number: str, body: dict[str, Any]) -> dict[str, Any]:
        order = self.order(cid, number)
        if order["status"] != "processing":
            raise HttpError(
                409, "not_cancellable", f"Order {number} is {order['status']}; it can no longer be cancelled."
            )
        order["status"] = "cancelled"
        return {
            "number": order["number"],
            "status": "cancelled",
            "refund_amount": order["total"],
            "currency": order["currency"],
        }

    def ticket_create(self, cid: str, body: dict[str, Any]) -> dict[str, Any]:
        self.customer(cid)
        tid = f"T-{len(self.data['tickets']) + 5001}"
        ticket = {
            "id": tid,
            "customer": cid,
            "subject": str(body.get("subject") or "Customer request")[:200],
            "body": str(body.get("body", ""))[:4000],
            "status": "open",
            "created_at": date.today().isoformat(),
        }
        self.data["tickets"][tid] = ticket
        return ticket

    def ticket(self, cid: str, tid: str) -> dict[str, Any]:
        found = self.data["tickets"].get(tid.upper())
        if not found or found["customer"] != cid:
            raise HttpError(404, "ticket_not_found", f"No ticket {tid} for this customer.")
        return found

    def stock(self, q: str) -> dict[str, Any]:
        words = [w for w in re.findall(r"\w+", q.lower()) if len(w) > 2]
        hits = [
            p
            for p in self.data["products"].values()
            if not words or any(w in p["name"].lower() or w == p["sku"].lower() for w in words)
        ]
        return {"products": [{**p, "in_stock": p["stock"] > 0} for p in hits]}

    def ship(self, number: str) -> dict[str, Any]:
        with self.lock:
            order = self.data["orders"].get(number.upper())
            if not order:
                raise HttpError(404, "order_not_found", f"No order {number}.")
            order["status"] = "shipped"
            order["shipment"] = {
                "carrier": "DHL",
                "tracking_number": f"0034043416{random.randrange(10**10):010d}",
                "shipped_at": date.today().isoformat(),
                "estimated_delivery": None,
                "tracking_url": None,
            }
            customer = self.data["customers"][order["customer"]]
        event = {
            "type": "order.shipped",
            "data": {
                "customer": {"external_id": customer["external_id"], "email": customer["email"]},
                "order": {k: order[k] for k in ("number", "status", "shipment", "total", "currency")},
            },
        }
        self.webhooks_sent.append(event)
        if self.webhook_url:
            threading.Thread(
                target=webhooks.send, args=(self.webhook_url, self.webhook_secret, event), daemon=True
            ).start()
        return {"order": order, "webhook": bool(self.webhook_url)}


ROUTES: list[tuple[str, re.Pattern[str], str]] = [
    (m, re.compile(f"^{p}$"), h)
    for m, p, h in [
        ("GET", r"/customers/(?P<cid>[^/]+)", "get_customer"),
        ("GET", r"/customers/(?P<cid>[^/]+)/orders", "get_orders"),
        ("GET", r"/customers/(?P<cid>[^/]+)/orders/(?P<number>[^/]+)", "get_order"),
        ("GET", r"/customers/(?P<cid>[^/]+)/orders/(?P<number>[^/]+)/shipment", "get_shipment"),
        ("POST", r"/customers/(?P<cid>[^/]+)/orders/(?P<number>[^/]+)/refunds", "post_refund"),
        ("POST", r"/customers/(?P<cid>[^/]+)/orders/(?P<number>[^/]+)/cancel", "post_cancel"),
        ("POST", r"/customers/(?P<cid>[^/]+)/tickets", "post_ticket"),
        ("GET", r"/customers/(?P<cid>[^/]+)/tickets/(?P<tid>[^/]+)", "get_ticket"),
        ("GET", r"/stock", "get_stock"),
        ("POST", r"/_admin/faults", "admin_faults"),
        ("GET", r"/_admin/writes", "admin_writes"),
        ("POST", r"/_admin/orders/(?P<number>[^/]+)/ship", "admin_ship"),
        ("POST", r"/_admin/reset", "admin_reset"),
    ]
]


def make_handler(crm: DemoCRM) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            self._dispatch("GET")

        def do_POST(self) -> None:  # noqa: N802
            self._dispatch("POST")

        def log_message(self, fmt: str, *args: object) -> None:
            logger.debug("%s " + fmt, self.address_string(), *args)

        def _dispatch(self, method: str) -> None:
            url = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            if (method, url.path) == ("POST", "/oauth/token"):
                return self._send(*crm.oauth_token(self.headers.get("Authorization", ""), raw))
            try:
                body = json.loads(raw) if raw else {}
                if not isinstance(body, dict):
                    raise ValueError
            except ValueError:
                return self._send(400, {"error": "bad_json", "message": "The body must be a JSON object."})
            routed = [(h, m) for rm, p, h in ROUTES if rm == method and (m := p.match(url.path))]
            if not routed:
                return self._send(404, {"error": "not_found", "message": f"No route {method} {url.path}."})
            handler, match = routed[0]
            admin = url.path.startswith("/_admin/")
            if not admin:
                if not crm.authorized(self.headers):
                    return self._send(
                        401, {"error": "unauthorized", "message": "Bad or missing credentials."}
                    )
                key = self.headers.get("Idempotency-Key")
                if key:  # counted on arrival, before any injected delay or failure
                    with crm.lock:
                        crm.requests_by_key[key] = crm.requests_by_key.get(key, 0) + 1
                delay, mode = crm.fault_for(url.path)
                if delay:
                    time.sleep(delay)
                if mode == "timeout":
                    time.sleep(60)  # longer than any client waits
                    return self._send(504, {"error": "timeout"})
                if mode == "500":
                    return self._send(500, {"error": "internal", "message": "Injected failure."})
                if mode == "429":
                    self.extra_headers = {"Retry-After": "1"}
                    return self._send(429, {"error": "rate_limited", "message": "Slow down."})
                if mode == "malformed":
                    return self._send_raw(200, b'{"number": "PP-10')
            params = {k: v[-1] for k, v in parse_qs(url.query).items()}
            try:
                status, payload = getattr(self, handler)(body=body, params=params, **match.groupdict())
            except HttpError as exc:
                status, payload = exc.status, exc.body
            self._send(status, payload)

        # -- handlers: (status, payload) --
        def get_customer(self, *, cid, **_):
            return 200, crm.customer(cid)

        def get_orders(self, *, cid, **_):
            return 200, crm.orders(cid)

        def get_order(self, *, cid, number, **_):
            return 200, crm.order(cid, number)

        def get_shipment(self, *, cid, number, **_):
            order = crm.order(cid, number)
            return 200, {"number": order["number"], "status": order["status"], "shipment": order["shipment"]}

        def post_refund(self, *, cid, number, body, **_):
            return crm.write(self.headers.get("Idempotency-Key"), lambda: crm.refund(cid, number, body))

        def post_cancel(self, *, cid, number, body, **_):
            return crm.write(self.headers.get("Idempotency-Key"), lambda: crm.cancel(cid, number, body))

        def post_ticket(self, *, cid, body, **_):
            return crm.write(self.headers.get("Idempotency-Key"), lambda: crm.ticket_create(cid, body))

        def get_ticket(self, *, cid, tid, **_):
            return 200, crm.ticket(cid, tid)

        def get_stock(self, *, params, **_):
            return 200, crm.stock(params.get("q", ""))

        def admin_faults(self, *, body, **_):
            with crm.lock:
                crm.faults = {
                    k: body.get(k)
                    for k in ("delay_ms", "error_rate", "mode", "times", "path_prefix")
                    if body.get(k) is not None
                }
            return 200, {"faults": crm.faults}

        def admin_writes(self, *, params, **_):
            keys = [params["key"]] if "key" in params else sorted(crm.requests_by_key)
            return 200, {
                "writes": [
                    {
                        "key": k,
                        "requests": crm.requests_by_key.get(k, 0),
                        "effects": crm.effects_by_key.get(k, 0),
                    }
                    for k in keys
                ]
            }

        def admin_ship(self, *, number, **_):
            return 200, crm.ship(number)

        def admin_reset(self, **_):
            crm.reset()
            return 200, {"reset": True}

        # -- output --
        def _send(self, status: int, payload: dict[str, Any]) -> None:
            self._send_raw(status, json.dumps(payload).encode())

        def _send_raw(self, status: int, raw: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            self.send_header("X-Request-Id", uuid.uuid4().hex)
            for name, value in getattr(self, "extra_headers", {}).items():
                self.send_header(name, value)
            self.extra_headers = {}
            self.end_headers()
            self.wfile.write(raw)

    return Handler


def make_server(crm: DemoCRM, host: str = "127.0.0.1", port: int = 0) -> ThreadingHTTPServer:
    server = ThreadingHTTPServer((host, port), make_handler(crm))
    server.daemon_threads = True
    return server
