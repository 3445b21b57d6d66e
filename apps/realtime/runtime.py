"""The socket runtime both WebSockets run on (/ws/chat/ PROTOCOL.md §2, /ws/agent/ §3).

`SocketConsumer` owns what the two sockets share, so each rule holds in one place:
- frames: size and JSON checks, the socket's schemas (schemas.py), dispatch to `on_<type>`;
- errors: the `error` event, the bad-frame budget and its 1008 close, outages as `unavailable`;
- rate limits: per socket, through apps.core.ratelimit (the one mechanism);
- sending: the slow-reader timeout (4408), nothing sent once closing;
- follow/unfollow of conversations (their channel-layer groups) and exactly-once, in-order
  delivery of their events (delivery.py), with gap repair from Postgres;
- the heartbeat (heartbeat.py): silent sockets closed, a per-kind `beat` hook, gap repair.
A consumer declares `schemas`, `message_types`, its heartbeat, and its `on_<type>` handlers and
hooks. It behaves the same under uvicorn and Daphne (daphne_close_codes.py lets Daphne send
1001/1008/1009).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Iterable
from typing import Any, ClassVar
from uuid import UUID, uuid4

from channels.consumer import get_handler_name
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings

from apps.conversations.errors import ConversationError
from apps.conversations.events import conversation_group
from apps.conversations.selectors import event_page
from apps.core.db import db_async
from apps.core.logging import log_context
from apps.core.ratelimit import limit_forget, limit_hit

from .delivery import ConversationStreams
from .heartbeat import heartbeat_of
from .limits import COUNTED_ERRORS, OUTAGES, BadFrameWindow
from .schemas import Frame, FrameError, Schemas, frame_parse
from .socket_slots import conversation_marks

logger = logging.getLogger(__name__)

CLOSE_SILENT = 1001
CLOSE_POLICY = 1008
# The client reads too slowly: its send buffer stayed full for CHAT_SEND_TIMEOUT_S. Reconnecting
# and resuming from its last seq gets it everything, from Postgres.
CLOSE_TOO_SLOW = 4408


async def _fetch_events(
    conversation_id: str, after_seq: int, upto_seq: int | None, limit: int
) -> list[dict[str, Any]]:
    return await db_async(event_page)(
        conversation_id=conversation_id, after_seq=after_seq, upto_seq=upto_seq, limit=limit
    )


class SocketConsumer(AsyncWebsocketConsumer):
    # -- what a socket declares ---------------------------------------------------------
    kind: ClassVar[str]  # "chat", "agent": for logs
    schemas: ClassVar[Schemas]
    # Frames that carry a client_msg_id (errors echo it) and count against the message rate.
    message_types: ClassVar[frozenset[str]]

    @classmethod
    def heartbeat_s(cls) -> float:
        raise NotImplementedError

    @classmethod
    def silent_after_s(cls) -> float:
        return 3 * cls.heartbeat_s()

    @classmethod
    async def beat(cls, sockets: list[SocketConsumer]) -> None:
        """Every heartbeat, for all of this process's sockets of the kind."""

    def frame_admit(self, frame: Frame) -> None:
        """Raise FrameError for a frame this socket may not send now."""

    def log_fields(self, frame: Frame) -> dict[str, Any]:
        return {}

    def groups_of(self, conversation_id: str) -> Iterable[str]:
        """Channel-layer groups a socket following this conversation is in."""
        return (conversation_group(conversation_id),)

    def wants(self, event: dict[str, Any], meta: dict[str, Any]) -> bool:
        """Whether a live conversation event is for this socket at all."""
        return True

    async def delivered(self, event: dict[str, Any]) -> None:
        """A live event went out to the client."""

    async def released(self) -> None:
        """The socket is gone (groups already left): free what the consumer holds."""

    # -- the runtime --------------------------------------------------------------------

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.socket_id = uuid4().hex
        self.last_seen = time.monotonic()
        self.closing = False
        self._released = False
        self.joined: set[str] = set()  # channel-layer groups this socket is in
        self.bad_frames = BadFrameWindow()
        self.streams = ConversationStreams(send=self.send_event, fetch=_fetch_events)

    async def dispatch(self, message: dict[str, Any]) -> None:
        # Channels' own dispatch first awaits `aclose_old_connections()`, a hop to asgiref's one
        # thread-sensitive thread for every frame and every channel-layer event of every socket
        # of the process: under 200 streaming answers that single thread was the queue all
        # tokens waited in. These sockets run no ORM on the loop: every database call goes
        # through apps.core.db, whose threads close old connections themselves.
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        await handler(message)

    async def __call__(self, scope, receive, send):
        # However the socket ends (disconnect, error, cancellation), free what it holds.
        try:
            await super().__call__(scope, receive, send)
        finally:
            await self._release()

    def watch(self) -> None:
        """From here on the heartbeat watches this socket."""
        if not self._released:
            heartbeat_of(type(self)).add(self)

    async def disconnect(self, code: int) -> None:
        await self._release()

    async def close_with(self, code: int) -> None:
        if self.closing:
            return
        self.closing = True
        try:
            await self.close(code)
        finally:
            await self._release()

    async def close_silent(self) -> None:
        await self.close_with(CLOSE_SILENT)

    async def _release(self) -> None:
        if self._released:
            return
        self._released = True
        self.closing = True
        heartbeat_of(type(self)).discard(self)
        limit_forget(key=self.socket_id)
        for group in list(self.joined):
            try:
                await self.channel_layer.group_discard(group, self.channel_name)
            except Exception:
                logger.exception("leaving group %s failed", group)
        self.joined.clear()
        try:
            await self.released()
        except Exception:  # what it holds in Redis expires on its own
            logger.exception("socket clean-up failed")

    # -- frames -------------------------------------------------------------------------

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        self.last_seen = time.monotonic()
        if self.closing:
            return
        client_msg_id = None
        try:
            frame = frame_parse(
                text_data, bytes_data, schemas=self.schemas, echoing_client_msg_id=self.message_types
            )
            if frame.type in self.message_types:
                client_msg_id = str(frame.client_msg_id)
            self.frame_admit(frame)
            if await self._rate_limited(frame):
                raise FrameError(
                    "rate_limited", "Too many frames; wait a few seconds and retry.", client_msg_id
                )
            with log_context(**self.log_fields(frame)):
                await getattr(self, f"on_{frame.type}")(frame)
        except FrameError as exc:
            await self.error(exc.code, exc.message, exc.client_msg_id)
        except ConversationError as exc:
            await self.error(exc.code, exc.message, client_msg_id)
        except OUTAGES:
            logger.exception("%s frame failed: a backing service is unreachable", self.kind)
            await self.error(
                "unavailable", "We can't reach our storage right now; retry in a few seconds.", client_msg_id
            )
        except Exception:
            logger.exception("%s frame failed", self.kind)
            await self.error("internal", "Something went wrong on our side; please retry.", client_msg_id)

    async def _rate_limited(self, frame: Frame) -> bool:
        if await limit_hit(name="frame_socket", key=self.socket_id):
            return True
        return frame.type in self.message_types and await limit_hit(name="message_socket", key=self.socket_id)

    async def error(self, code: str, message: str, client_msg_id: str | None = None) -> None:
        event = {"type": "error", "code": code, "message": message}
        if client_msg_id is not None:
            event["client_msg_id"] = client_msg_id
        await self.send_event(event)
        if code in COUNTED_ERRORS and self.bad_frames.add():
            await self.close_with(CLOSE_POLICY)

    async def send_event(self, event: dict[str, Any]) -> None:
        if self.closing:
            return
        try:
            text = json.dumps(event, separators=(",", ":"))
            async with asyncio.timeout(settings.CHAT_SEND_TIMEOUT_S):  # no task of its own, unlike wait_for
                await self.send(text_data=text)
        except TimeoutError:
            # uvicorn holds a send while the client's buffers are full: a client that reads
            # nothing is let go (what it missed stays in Postgres for its resume), and what
            # piles up meanwhile stays bounded by the channel layer's capacity.
            logger.warning(
                "closing a %s socket that read nothing: a send waited %s s",
                self.kind, settings.CHAT_SEND_TIMEOUT_S,
            )
            asyncio.get_running_loop().create_task(self.close_with(CLOSE_TOO_SLOW))

    async def on_ping(self, frame: Frame) -> None:
        await self.send_event({"type": "pong", "ts": frame.ts})
        await self.repair_gaps()

    # -- groups and conversations --------------------------------------------------------

    async def join(self, group: str) -> None:
        await self.channel_layer.group_add(group, self.channel_name)
        self.joined.add(group)
        if self._released:  # closed meanwhile: do not stay in the group
            await self.channel_layer.group_discard(group, self.channel_name)

    async def leave(self, group: str) -> None:
        if group in self.joined:
            self.joined.discard(group)
            await self.channel_layer.group_discard(group, self.channel_name)

    async def follow(self, conversation_id: UUID | str) -> None:
        """Join the conversation's groups, before any read of its seq: nothing falls between
        a replay and the live events."""
        conversation_id = str(conversation_id)
        if self.streams.follows(conversation_id):
            return
        for group in self.groups_of(conversation_id):
            await self.join(group)
        if not self._released:
            self.streams.follow(conversation_id)

    async def unfollow(self, conversation_id: UUID | str) -> None:
        conversation_id = str(conversation_id)
        self.streams.unfollow(conversation_id)
        for group in self.groups_of(conversation_id):
            await self.leave(group)

    async def conv_event(self, message: dict[str, Any]) -> None:
        """A conversation event from the channel layer (`conv.event`)."""
        if self.closing:
            return
        event, meta = message["event"], message.get("meta") or {}
        if not self.wants(event, meta):
            return
        try:
            if await self.streams.live(event, meta):
                await self.delivered(event)
        except OUTAGES:  # the gap is repaired by the next event or the next heartbeat
            logger.exception("%s socket: gap repair failed, a backing service is unreachable", self.kind)

    async def repair_gaps(self, marks: dict[str, int] | None = None) -> None:
        """Fetch from Postgres what this socket missed (a dropped broadcast): `marks` are the
        conversations' newest seqs as Redis knows them (read here when not given)."""
        if marks is None:
            following = self.streams.following()
            if not following:
                return
            marks = await conversation_marks(following)
        for conversation_id, seq in marks.items():
            if seq > self.streams.last_seq(conversation_id) and self.streams.follows(conversation_id):
                await self.streams.catch_up(conversation_id)
