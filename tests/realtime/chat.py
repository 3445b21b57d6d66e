"""A WebSocket client for consumer tests: JSON frames in and out of the real ASGI app."""

from __future__ import annotations

import json
from typing import Any

from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator

from config.routing import websocket_urlpatterns

APP = URLRouter(websocket_urlpatterns)


class Chat:
    def __init__(self) -> None:
        self.comm = WebsocketCommunicator(APP, "/ws/chat/")
        self.open = False

    async def connect(self) -> None:
        connected, _ = await self.comm.connect(timeout=10)
        assert connected
        self.open = True

    async def send(self, frame: dict[str, Any]) -> None:
        await self.comm.send_to(text_data=json.dumps(frame))

    async def send_raw(self, text: str | None = None, data: bytes | None = None) -> None:
        await self.comm.send_to(text_data=text, bytes_data=data)

    async def recv(self, timeout: float = 10) -> dict[str, Any]:
        """The next event; a close arrives as {"type": "websocket.close", "code": ...}."""
        output = await self.comm.receive_output(timeout)
        if output["type"] == "websocket.close":
            self.open = False
            return output
        return json.loads(output["text"])

    async def recv_until(self, type: str, timeout: float = 10) -> list[dict[str, Any]]:
        """Events up to and including the first of `type`."""
        seen = []
        while True:
            event = await self.recv(timeout)
            seen.append(event)
            if event["type"] == type:
                return seen

    async def nothing(self, timeout: float = 0.3) -> bool:
        return await self.comm.receive_nothing(timeout)

    async def auth(self, token: str) -> dict[str, Any]:
        await self.send({"type": "auth", "token": token})
        return await self.recv()

    async def close(self) -> None:
        # channels-redis can take seconds to give up its blocking read after a disconnect (the
        # consumer's own cleanup has run by then): cancel the app instance as Daphne would.
        try:
            await self.comm.disconnect(timeout=1)
        except TimeoutError:
            pass
        self.open = False
