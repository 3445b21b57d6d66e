"""A real agent client for end-to-end tests: a `websockets` socket with a session cookie."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import websockets


class AgentClient:
    def __init__(self, ws_url: str, cookie: str, origin: str) -> None:
        self.ws_url, self.cookie, self.origin = ws_url, cookie, origin
        self.ws: websockets.ClientConnection | None = None

    async def connect(self) -> dict[str, Any]:
        self.ws = await websockets.connect(
            f"{self.ws_url}/ws/agent/",
            origin=self.origin,
            additional_headers=[("Cookie", f"sessionid={self.cookie}")],
            open_timeout=20,
            ping_interval=None,
            max_size=None,
        )
        return await self.recv()

    async def send(self, frame: dict[str, Any]) -> None:
        await self.ws.send(json.dumps(frame))

    async def recv(self, timeout: float = 20) -> dict[str, Any]:
        try:
            return json.loads(await asyncio.wait_for(self.ws.recv(), timeout))
        except websockets.ConnectionClosed as closed:
            return {"type": "closed", "code": closed.rcvd.code if closed.rcvd else None}

    async def recv_until(self, type: str, timeout: float = 20, **match: Any) -> list[dict[str, Any]]:
        seen = []
        while True:
            event = await self.recv(timeout)
            seen.append(event)
            if event["type"] == "closed" or (
                event["type"] == type and all(event.get(k) == v for k, v in match.items())
            ):
                return seen

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()
