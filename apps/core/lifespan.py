"""ASGI lifespan: start this process's turn runner, and hand its turns over on shutdown.

Servers that speak the lifespan protocol (uvicorn) call it; under Daphne, which does not, the
runner starts with the first chat socket and a killed process's turns lapse to the others.
"""

from __future__ import annotations

import logging
from typing import Any

logger = logging.getLogger(__name__)


async def lifespan_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    from apps.assistant.turns import runner_handover, runner_start

    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            runner_start()
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            try:
                await runner_handover()
            except Exception:  # the database may be gone too: the leases lapse instead
                logger.exception("handing turns over at shutdown failed")
            await send({"type": "lifespan.shutdown.complete"})
            return
