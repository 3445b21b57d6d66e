"""A scripted Kefu server inside the browser (Playwright request and WebSocket routing).

For widget behaviour that a real server produces only by chance or by crashing at the right
moment: expired tokens, replays overlapping live events, events out of order, lost acks.
The widget is the real file; only the network answers are scripted.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from playwright.sync_api import Page, Route, WebSocketRoute

STATIC = Path(__file__).resolve().parents[2] / "apps" / "widget" / "static" / "kefu"
BASE = "http://kefu.test"
HOST_PAGE = f"""<!doctype html><html lang="en"><head><title>Host</title></head><body>
<h1>Someone's shop</h1>
<script src="{BASE}/widget/kefu-widget.js" data-kefu-url="{BASE}" data-title="Shop help"></script>
</body></html>"""

Frame = dict[str, Any]


class FakeKefu:
    def __init__(self, page: Page) -> None:
        self.page = page
        self.frames: list[Frame] = []  # every frame the widget sent, in order
        self.sockets: list[WebSocketRoute] = []
        self.sessions = 0
        self.conversation_id: str | None = None  # what `ready` names
        self.heartbeat_s = 25
        self.ack_messages = True  # False: messages get no ack (a server that died mid-way)
        self.seq = 0  # the last seq given out by the default message answer
        # Called for each frame before the default answer; return True to skip the default.
        self.react: Callable[[WebSocketRoute, Frame], bool] = lambda socket, frame: False
        page.route(f"{BASE}/**", self._http)
        page.route_web_socket(f"{BASE.replace('http', 'ws')}/ws/chat/", self._socket)

    # -- the network ---------------------------------------------------------------------

    def _http(self, route: Route) -> None:
        url = route.request.url
        if url.endswith("/api/widget/session"):
            self.sessions += 1
            body = {
                "token": f"token-{self.sessions}",
                "customer_id": "cust-1",
                "expires_at": "2999-01-01T00:00:00Z",
            }
            route.fulfill(status=201, json=body, headers={"Access-Control-Allow-Origin": "*"})
        elif url.endswith((".js", ".css")):
            name = url.rsplit("/", 1)[1]
            kind = "text/javascript" if name.endswith(".js") else "text/css"
            route.fulfill(body=(STATIC / name).read_text(), content_type=f"{kind}; charset=utf-8")
        else:
            route.fulfill(body=HOST_PAGE, content_type="text/html; charset=utf-8")

    def _socket(self, socket: WebSocketRoute) -> None:
        self.sockets.append(socket)
        socket.on_message(lambda raw: self._frame(socket, json.loads(raw)))

    def _frame(self, socket: WebSocketRoute, frame: Frame) -> None:
        self.frames.append(frame)
        if self.react(socket, frame):
            return
        if frame["type"] == "auth":
            self.send(
                {
                    "type": "ready",
                    "customer_id": "cust-1",
                    "conversation_id": self.conversation_id,
                    "last_seq": 0,
                    "heartbeat_s": self.heartbeat_s,
                },
                socket,
            )
        elif frame["type"] == "resume":
            self.send({"type": "resumed", "conversation_id": frame["conversation_id"], "last_seq": 0}, socket)
        elif frame["type"] == "message" and self.ack_messages:
            self.seq += 1
            conversation_id = frame.get("conversation_id") or "conv-1"
            ack = {"client_msg_id": frame["client_msg_id"], "message_id": f"msg-{self.seq}", "seq": self.seq}
            self.send({"type": "ack", "conversation_id": conversation_id, **ack}, socket)
            self.send(self.message(self.seq, frame["text"], "customer", conversation_id), socket)
        elif frame["type"] == "ping":
            self.send({"type": "pong", "ts": frame["ts"]}, socket)

    # -- what tests use --------------------------------------------------------------------

    def send(self, event: Frame, socket: WebSocketRoute | None = None) -> None:
        (socket or self.sockets[-1]).send(json.dumps(event))

    def message(self, seq: int, text: str, role: str = "assistant", conversation_id: str = "conv-1") -> Frame:
        return {
            "type": "message",
            "conversation_id": conversation_id,
            "seq": seq,
            "message": {
                "id": f"msg-{seq}",
                "role": role,
                "text": text,
                "created_at": "2026-01-01T10:00:00Z",
                "citations": [],
                "author": None,
            },
        }

    def wait_for_frame(self, predicate: Callable[[Frame], bool], timeout_s: float = 15) -> Frame:
        """The first frame the widget sent that matches; lets the browser run while waiting."""
        deadline = time.monotonic() + timeout_s
        while True:
            for frame in self.frames:
                if predicate(frame):
                    return frame
            if time.monotonic() > deadline:
                raise AssertionError(f"the widget sent no such frame; it sent: {self.frames}")
            self.page.wait_for_timeout(50)

    def frames_of(self, kind: str) -> list[Frame]:
        return [frame for frame in self.frames if frame["type"] == kind]
