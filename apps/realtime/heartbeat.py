"""The one silent-socket mechanism: a heartbeat task per event loop and kind of socket.

It watches every open socket of its kind (runtime.SocketConsumer) and, on each tick:
- closes a socket silent for `silent_after_s()` with 1001 (PROTOCOL.md §2, heartbeat);
- every `heartbeat_s()` runs the kind's `beat` hook over its sockets (the chat socket refreshes
  its slots in Redis, the agent socket re-checks each agent's account);
- every half heartbeat repairs gaps: reads the newest seq of every followed conversation from
  Redis (one MGET for all the sockets) and lets a socket that is behind fetch what it missed
  from Postgres, so a dropped broadcast reaches the client within a heartbeat.
One task per loop rather than one per socket: ten thousand sockets cost one timer.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING

from apps.core.runtime import runtime

from .socket_slots import conversation_marks

if TYPE_CHECKING:
    from .runtime import SocketConsumer

logger = logging.getLogger(__name__)


class Heartbeat:
    def __init__(self, kind: type[SocketConsumer]) -> None:
        self.kind = kind
        self.sockets: dict[SocketConsumer, None] = {}
        self.task: asyncio.Task | None = None

    def add(self, sock: SocketConsumer) -> None:
        self.sockets[sock] = None
        if self.task is None or self.task.done():
            name = f"{self.kind.__name__}-heartbeat"
            self.task = asyncio.get_running_loop().create_task(self._run(), name=name)

    def discard(self, sock: SocketConsumer) -> None:
        self.sockets.pop(sock, None)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        next_beat = time.monotonic() + self.kind.heartbeat_s()
        next_repair = time.monotonic() + self.kind.heartbeat_s() / 2
        while self.sockets:
            heartbeat = self.kind.heartbeat_s()  # read each round: tests change it
            await asyncio.sleep(min(1.0, heartbeat / 2))
            now, silent_after = time.monotonic(), self.kind.silent_after_s()
            for sock in [s for s in self.sockets if now - s.last_seen >= silent_after]:
                self.discard(sock)
                loop.create_task(sock.close_silent())
            if now >= next_beat:
                next_beat = now + heartbeat
                try:
                    await self.kind.beat(list(self.sockets))
                except Exception:  # Redis or Postgres away for a moment: the next beat tries again
                    logger.exception("%s heartbeat failed", self.kind.__name__)
            if now >= next_repair:
                next_repair = now + heartbeat / 2
                try:
                    await self._repair()
                except Exception:
                    logger.exception("checking sockets for missed events failed")

    async def _repair(self) -> None:
        socks = list(self.sockets)
        followed = sorted({c for s in socks for c in s.streams.following()})
        if not followed:
            return
        marks = await conversation_marks(followed)
        loop = asyncio.get_running_loop()
        for sock in socks:
            if any(marks.get(c, 0) > sock.streams.last_seq(c) for c in sock.streams.following()):
                loop.create_task(sock.repair_gaps(marks))


def heartbeat_of(kind: type[SocketConsumer]) -> Heartbeat:
    """This loop's heartbeat for sockets of `kind`, kept by the process's runtime."""
    return runtime().loop_get(f"heartbeat|{kind.__module__}.{kind.__qualname__}", lambda: Heartbeat(kind))
