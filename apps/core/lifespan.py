"""ASGI lifespan: build this process's runtime (apps/core/runtime.py) at start-up and close it at
shutdown; the components upper apps registered start and stop with it (the assistant's turn
runner starts, and hands its turns over at shutdown).

Servers that speak the lifespan protocol (uvicorn) call it; under Daphne, which does not, the
runtime's entries are made on first use (the runner with the first chat socket) and a killed
process's turns lapse to the others.
"""

from __future__ import annotations

import logging
from typing import Any

from .memory import heap_freeze
from .runtime import runtime

logger = logging.getLogger(__name__)


async def lifespan_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await runtime().start("asgi")
            heap_freeze()
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await runtime().stop()  # logs what fails and closes the rest
            await send({"type": "lifespan.shutdown.complete"})
            return
