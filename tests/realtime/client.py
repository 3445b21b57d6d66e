"""A real customer client for end-to-end tests: HTTP session + `websockets` socket."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import websockets


async def widget_session(http_url: str, **body: Any) -> dict[str, Any]:
    async with httpx.AsyncClient() as client:
        response = await client.post(f"{http_url}/api/widget/session", json=body)
    assert response.status_code == 201, response.text
    return response.json()


class Customer:
    """One socket of a customer against a real server."""

    def __init__(self, ws_url: str, token: str) -> None:
        self.ws_url, self.token = ws_url, token
        self.ws: websockets.ClientConnection | None = None

    async def connect(self) -> dict[str, Any]:
        self.ws = await websockets.connect(f"{self.ws_url}/ws/chat/", open_timeout=20, ping_interval=None)
        await self.send({"type": "auth", "token": self.token})
        return await self.recv()

    async def send(self, frame: dict[str, Any]) -> None:
        await self.ws.send(json.dumps(frame))

    async def recv(self, timeout: float = 20) -> dict[str, Any]:
        try:
            return json.loads(await asyncio.wait_for(self.ws.recv(), timeout))
        except websockets.ConnectionClosed as closed:
            return {"type": "closed", "code": closed.rcvd.code if closed.rcvd else None}

    async def recv_until(self, type: str, timeout: float = 20) -> list[dict[str, Any]]:
        seen = []
        while True:
            event = await self.recv(timeout)
            seen.append(event)
            if event["type"] in (type, "closed"):
                return seen

    def kill(self) -> None:
        """Vanish without a close handshake, as a crashed browser tab does."""
        self.ws.transport.abort()

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()
