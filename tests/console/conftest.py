"""Agents for console tests: staff users with a signed-in session, and agent sockets that send
the session cookie and an Origin, always closed before the test database is flushed."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.contrib.auth import get_user_model
from django.test import Client

from config.routing import websocket_urlpatterns

APP = URLRouter(websocket_urlpatterns)
ORIGIN = "http://127.0.0.1:8000"


def make_user(username: str, first: str, last: str, *, staff: bool = True) -> Any:
    return get_user_model().objects.create_user(
        username=username, email=username, password="pw", first_name=first, last_name=last, is_staff=staff
    )


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


def session_cookie(user: Any) -> str:
    client = Client()
    client.force_login(user)
    return client.cookies["sessionid"].value


class AgentSocket:
    def __init__(self, comm: WebsocketCommunicator) -> None:
        self.comm = comm
        self.ready: dict[str, Any] | None = None

    async def send(self, frame: dict[str, Any]) -> None:
        await self.comm.send_to(text_data=json.dumps(frame))

    async def recv(self, timeout: float = 10) -> dict[str, Any]:
        output = await self.comm.receive_output(timeout)
        if output["type"] == "websocket.close":
            return output
        return json.loads(output["text"])

    async def recv_until(
        self, type: str, timeout: float = 10, where=None, **match: Any
    ) -> list[dict[str, Any]]:
        """Frames up to and including the first of `type` (with the given fields)."""
        seen = []
        while True:
            event = await self.recv(timeout)
            seen.append(event)
            if event["type"] == type and all(event.get(k) == v for k, v in match.items()):
                if where is None or where(event):
                    return seen

    async def nothing(self, timeout: float = 0.3) -> bool:
        return await self.comm.receive_nothing(timeout)

    async def close(self) -> None:
        try:
            await self.comm.disconnect(timeout=1)
        except TimeoutError:
            pass


def communicator(cookie: str | None, origin: str | None = ORIGIN) -> WebsocketCommunicator:
    headers = []
    if cookie is not None:
        headers.append((b"cookie", f"sessionid={cookie}".encode()))
    if origin is not None:
        headers.append((b"origin", origin.encode()))
    return WebsocketCommunicator(APP, "/ws/agent/", headers=headers)


@pytest.fixture
async def agent_socket(transactional_db) -> AsyncIterator[Callable[..., Awaitable[AgentSocket]]]:
    """`await agent_socket(user)`: a connected console socket that received `agent_ready`."""
    opened: list[AgentSocket] = []

    async def open_socket(user: Any, origin: str | None = ORIGIN) -> AgentSocket:
        cookie = await sync_to_async(session_cookie)(user)
        comm = communicator(cookie, origin)
        connected, code = await comm.connect(timeout=10)
        assert connected, f"refused with {code}"
        socket = AgentSocket(comm)
        opened.append(socket)
        socket.ready = await socket.recv()
        assert socket.ready["type"] == "agent_ready", socket.ready
        return socket

    yield open_socket
    for socket in opened:
        await socket.close()
