"""Webhook helpers: Standard-Webhooks signing as the demo CRM signs, its events, the shared
fixture files, and a loopback receiver for outgoing webhooks (scripted statuses, recorded requests)."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from django.conf import settings
from standardwebhooks.webhooks import Webhook

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


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    url: str
    statuses: list[int]  # answers in order; the last one repeats
    requests: list[Received] = field(default_factory=list)


@contextmanager
def receiver(statuses: list[int]) -> Iterator[Receiver]:
    lock = threading.Lock()
    state = Receiver(url="", statuses=list(statuses))

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            body = self.rfile.read(int(self.headers.get("content-length") or 0))
            with lock:
                state.requests.append(Received({k.lower(): v for k, v in self.headers.items()}, body))
                status = state.statuses[min(len(state.requests), len(state.statuses)) - 1]
            self.send_response(status)
            self.send_header("content-type", "text/plain")
            self.end_headers()
            self.wfile.write(f"answered {status}".encode())

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}/hooks"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
