"""The least a durable ack can cost: a bare consumer that stores one row and commits before it acks.

A baseline for bench/ws_sessions.py, served on its own server process like the others:
    uvicorn bench.durable_app:application --ws websockets-sansio   (or: daphne bench.durable_app:application)
It speaks just enough of /ws/chat/ for the bench's clients: `auth` -> `ready` (no token check,
no database), `message` -> one INSERT + COMMIT through apps.core.db.db_async (the same bounded
pool and persistent connections Kefu's chat uses) -> `ack`. No seq, no customer lock, no
conversation, no broadcast: what Kefu's ack path adds on top of this is its own cost.
The table (TABLE below) is created by the bench in its throw-away database.
"""

from __future__ import annotations

import json
import os
from uuid import uuid4

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.base")

import django  # noqa: E402

django.setup()

from channels.generic.websocket import AsyncWebsocketConsumer  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.db import connection, transaction  # noqa: E402
from django.urls import path  # noqa: E402

from apps.core.db import db_async  # noqa: E402

TABLE = "bench_durable_ack"
CREATE_TABLE = (
    f"CREATE TABLE IF NOT EXISTS {TABLE} (id uuid PRIMARY KEY, client_msg_id uuid NOT NULL, "
    "text text NOT NULL, created_at timestamptz NOT NULL DEFAULT now())"
)


def ack_store(*, client_msg_id: str, text: str) -> str:
    row_id = str(uuid4())
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {TABLE} (id, client_msg_id, text) VALUES (%s, %s, %s)",
            [row_id, client_msg_id, text],
        )
    return row_id


class DurableAckConsumer(AsyncWebsocketConsumer):
    async def receive(self, text_data=None, bytes_data=None):
        frame = json.loads(text_data)
        if frame["type"] == "auth":
            await self.send(json.dumps({"type": "ready", "conversation_id": None, "last_seq": 0}))
        elif frame["type"] == "message":
            row_id = await db_async(ack_store)(client_msg_id=frame["client_msg_id"], text=frame["text"])
            await self.send(
                json.dumps({"type": "ack", "client_msg_id": frame["client_msg_id"], "message_id": row_id})
            )


application = ProtocolTypeRouter(
    {"websocket": URLRouter([path("ws/durable/", DurableAckConsumer.as_asgi())])}
)
