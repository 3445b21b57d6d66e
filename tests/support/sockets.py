"""One socket client for the chat and agent sockets, over two transports: a real `websockets`
connection to a server process (`Customer`, `AgentClient`), or the ASGI app in this process
through Channels' communicator (`Chat`, `AgentSocket`). JSON frames in and out, the same
`recv`/`recv_until` on both."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import websockets
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator

from config.routing import websocket_urlpatterns

APP = URLRouter(websocket_urlpatterns)
ORIGIN = "http://127.0.0.1:8000"


class Frames:
    """`recv_until` over any transport's `recv`."""

    timeout: float = 20
    closed_type: str = "closed"  # how `recv` reports the peer's close
    stops_on_close = True  # `recv_until` returns at a close instead of reading on

    async def recv(self, timeout: float | None = None) -> dict[str, Any]:
        raise NotImplementedError

    async def recv_until(
        self, type: str, timeout: float | None = None, where: Callable[[dict], bool] | None = None,
        **match: Any,
    ) -> list[dict[str, Any]]:
        """Frames up to and including the first of `type` (with the given fields, and `where`)."""
        seen = []
        while True:
            event = await self.recv(self.timeout if timeout is None else timeout)
            seen.append(event)
            if self.stops_on_close and event["type"] == self.closed_type:
                return seen
            if event["type"] == type and all(event.get(k) == v for k, v in match.items()):
                if where is None or where(event):
                    return seen


class Socket(Frames):
    """A real socket to a server process."""

    path = "/ws/chat/"

    def __init__(self, ws_url: str) -> None:
        self.ws_url = ws_url
        self.ws: websockets.ClientConnection | None = None

    async def open(self, **options: Any) -> None:
        self.ws = await websockets.connect(
            f"{self.ws_url}{self.path}", open_timeout=20, ping_interval=None, **options
        )

    async def send(self, frame: dict[str, Any]) -> None:
        await self.ws.send(json.dumps(frame))

    async def recv(self, timeout: float | None = None) -> dict[str, Any]:
        try:
            return json.loads(await asyncio.wait_for(self.ws.recv(), timeout or self.timeout))
        except websockets.ConnectionClosed as closed:
            return {"type": "closed", "code": closed.rcvd.code if closed.rcvd else None}

    def kill(self) -> None:
        """Vanish without a close handshake, as a crashed browser tab does."""
        self.ws.transport.abort()

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()


async def widget_session(http_url: str, **body: Any) -> dict[str, Any]:
    async with httpx.AsyncClient() as client:
        response = await client.post(f"{http_url}/api/widget/session", json=body)
    assert response.status_code == 201, response.text
    return response.json()


class Customer(Socket):
    """One socket of a customer against a real server; `auth` fields join the `auth` frame as the
    widget sends them (the host page's `team`, `language`, `language_fixed`)."""

    def __init__(self, ws_url: str, token: str, **auth: Any) -> None:
        super().__init__(ws_url)
        self.token = token
        self.auth_fields = auth

    async def connect(self) -> dict[str, Any]:
        await self.open()
        await self.send({"type": "auth", "token": self.token, **self.auth_fields})
        return await self.recv()


async def demo_customer_socket(server: Any, **auth: Any) -> Customer:
    """Ada (`demo-customer-1`, identified with a valid user_hash) connected and `ready`."""
    from apps.customers.services import user_hash_for

    session = await widget_session(
        server.http_url,
        user_id="demo-customer-1",
        user_hash=user_hash_for(user_id="demo-customer-1"),
        name="Ada Lovelace",
        email="ada@example.com",
    )
    ada = Customer(server.ws_url, session["token"], **auth)
    assert (await ada.connect())["type"] == "ready"
    return ada


async def ask(customer: Frames, text: str, conversation_id: str | None = None, timeout: float = 60) -> list:
    """Send a question; every event up to its answer's `message_end`."""
    frame = {"type": "message", "client_msg_id": str(uuid.uuid4()), "text": text}
    if conversation_id:
        frame["conversation_id"] = conversation_id
    await customer.send(frame)
    return await customer.recv_until("message_end", timeout=timeout)


class AgentClient(Socket):
    """An agent's console socket against a real server, with a session cookie."""

    path = "/ws/agent/"

    def __init__(self, ws_url: str, cookie: str, origin: str) -> None:
        super().__init__(ws_url)
        self.cookie, self.origin = cookie, origin

    async def connect(self) -> dict[str, Any]:
        await self.open(origin=self.origin, additional_headers=[("Cookie", f"sessionid={self.cookie}")],
                        max_size=None)
        return await self.recv()


class AppSocket(Frames):
    """A socket to the ASGI app in this process."""

    timeout = 10
    closed_type = "websocket.close"
    stops_on_close = False

    def __init__(self, comm: WebsocketCommunicator) -> None:
        self.comm = comm
        self.open = False

    async def send(self, frame: dict[str, Any]) -> None:
        await self.comm.send_to(text_data=json.dumps(frame))

    async def send_raw(self, text: str | None = None, data: bytes | None = None) -> None:
        await self.comm.send_to(text_data=text, bytes_data=data)

    async def recv(self, timeout: float | None = None) -> dict[str, Any]:
        """The next event; a close arrives as {"type": "websocket.close", "code": ...}."""
        output = await self.comm.receive_output(timeout or self.timeout)
        if output["type"] == "websocket.close":
            self.open = False
            return output
        return json.loads(output["text"])

    async def nothing(self, timeout: float = 0.3) -> bool:
        return await self.comm.receive_nothing(timeout)

    async def close(self) -> None:
        # channels-redis can take seconds to give up its blocking read after a disconnect (the
        # consumer's own cleanup has run by then): cancel the app instance as Daphne would.
        try:
            await self.comm.disconnect(timeout=1)
        except TimeoutError:
            pass
        self.open = False


class Chat(AppSocket):
    """A customer's chat socket in this process: `connect()`, then `auth(token)`."""

    def __init__(self) -> None:
        super().__init__(WebsocketCommunicator(APP, "/ws/chat/"))

    async def connect(self) -> None:
        connected, _ = await self.comm.connect(timeout=10)
        assert connected
        self.open = True

    async def auth(self, token: str) -> dict[str, Any]:
        await self.send({"type": "auth", "token": token})
        return await self.recv()


class AgentSocket(AppSocket):
    """An agent's console socket in this process (see `communicator`); `.ready` once connected."""

    def __init__(self, comm: WebsocketCommunicator) -> None:
        super().__init__(comm)
        self.ready: dict[str, Any] | None = None


def communicator(cookie: str | None, origin: str | None = ORIGIN) -> WebsocketCommunicator:
    headers = []
    if cookie is not None:
        headers.append((b"cookie", f"sessionid={cookie}".encode()))
    if origin is not None:
        headers.append((b"origin", origin.encode()))
    return WebsocketCommunicator(APP, "/ws/agent/", headers=headers)


def shown_text(events, message_id):
    """What a widget shows for an answer: the last `partial`, plus the `token`s after it."""
    text = ""
    for event in events:
        if event.get("message_id") != message_id:
            continue
        if event["type"] == "partial":
            text = event["text"]
        elif event["type"] == "token":
            text += event["text"]
    return text



async def answer_of(socket: Frames, timeout: float = 60) -> list[dict[str, Any]]:
    """Events up to the first `message_end`."""
    return await socket.recv_until("message_end", timeout=timeout)
