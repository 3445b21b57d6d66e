"""The customer chat socket, /ws/chat/ (PROTOCOL.md §2).

Thin by design: frames are validated by schemas.py, state changes go through the
conversations/assistant services (on apps.core.db's pool, so one socket's slow query never
holds another's), and conversation events arrive from the channel layer
(apps/conversations/events.py) to be forwarded exactly once and in order by
apps/realtime/delivery.py. The socket joins its customer's group at auth, so a conversation
of theirs that starts elsewhere (another tab, an agent, a CRM update) reaches it too.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Any
from uuid import UUID, uuid4

from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings

from apps.assistant.turns import runner_start, turn_kick, turn_partial, turn_stop
from apps.conversations.errors import ConversationError
from apps.conversations.events import (
    abroadcast_deferred,
    aevent_broadcast,
    conversation_group,
    customer_group,
)
from apps.conversations.selectors import conversation_get_for_customer, event_page
from apps.conversations.services import conversation_rate, conversation_request_human
from apps.core import metrics
from apps.core.db import db_async
from apps.core.logging import log_context
from apps.core.ratelimit import limit_hit
from apps.customers.tokens import TokenInvalid, widget_token_verify

from . import session
from .delivery import ConversationStreams
from .limits import (
    AUTH_TIMEOUT_S,
    COUNTED_ERRORS,
    FRAME_RATE,
    MESSAGE_RATE,
    OUTAGES,
    BadFrameWindow,
    TokenBucket,
)
from .presence import conversation_marks, slot_claim, slot_release, sweeper
from .schemas import Frame, FrameError, frame_parse

logger = logging.getLogger(__name__)

CLOSE_UNAUTHENTICATED = 4401
CLOSE_TOO_MANY_SOCKETS = 4429
CLOSE_POLICY = 1008
CLOSE_SILENT = 1001
# The client reads too slowly: its send buffer stayed full for CHAT_SEND_TIMEOUT_S. Reconnecting
# and resuming from its last seq gets it everything, from Postgres.
CLOSE_TOO_SLOW = 4408


async def _fetch_events(
    conversation_id: str, after_seq: int, upto_seq: int | None, limit: int
) -> list[dict[str, Any]]:
    return await db_async(event_page)(
        conversation_id=conversation_id, after_seq=after_seq, upto_seq=upto_seq, limit=limit
    )


class ChatConsumer(AsyncWebsocketConsumer):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.socket_id = uuid4().hex
        self.customer_id: UUID | None = None
        self.last_seen = time.monotonic()
        self.closing = False
        self._released = False
        self._authenticating = False
        self._auth_timer: asyncio.TimerHandle | None = None
        self.streams = ConversationStreams(send=self._send, fetch=_fetch_events)
        self.owned: set[str] = set()  # conversations checked to be this customer's
        self.joined: set[str] = set()  # channel-layer groups this socket is in
        self.bad_frames = BadFrameWindow()
        self.frame_bucket = TokenBucket(*FRAME_RATE)
        self.message_bucket = TokenBucket(*MESSAGE_RATE)

    async def __call__(self, scope, receive, send):
        # However the socket ends (disconnect, error, cancellation), free its slot and groups.
        try:
            await super().__call__(scope, receive, send)
        finally:
            await self._release()

    # -- lifecycle ---------------------------------------------------------------------

    async def connect(self) -> None:
        runner_start()  # servers without ASGI lifespan (Daphne): answers run from the first socket on
        await self.accept()
        self._auth_timer = asyncio.get_running_loop().call_later(AUTH_TIMEOUT_S, self._auth_expired)

    def _auth_expired(self) -> None:
        if self.customer_id is None and not self._authenticating and not self.closing:
            asyncio.get_running_loop().create_task(self._close(CLOSE_UNAUTHENTICATED))

    async def close_silent(self) -> None:
        await self._close(CLOSE_SILENT)

    async def disconnect(self, code: int) -> None:
        await self._release()

    async def _close(self, code: int) -> None:
        if self.closing:
            return
        self.closing = True
        try:
            await self.close(code)
        finally:
            await self._release()

    async def _release(self) -> None:
        if self._released:
            return
        self._released = True
        if self._auth_timer is not None:
            self._auth_timer.cancel()
        sweeper().discard(self)
        for group in list(self.joined):
            try:
                await self.channel_layer.group_discard(group, self.channel_name)
            except Exception:
                logger.exception("leaving group %s failed", group)
        self.joined.clear()
        if self.customer_id is not None:
            metrics.sockets_open.dec()
            try:
                await slot_release(customer_id=self.customer_id, socket_id=self.socket_id)
            except Exception:  # the slot expires on its own after 3 heartbeats
                logger.exception("releasing socket slot failed")

    # -- frames ------------------------------------------------------------------------

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        self.last_seen = time.monotonic()
        if self.closing:
            return
        client_msg_id = None
        try:
            frame = frame_parse(text_data, bytes_data)
            if frame.type == "message":
                client_msg_id = str(frame.client_msg_id)
            if self.customer_id is None and frame.type != "auth":
                raise FrameError(
                    "unauthenticated", "Send `auth` with your widget token first.", client_msg_id
                )
            if not self.frame_bucket.take() or (frame.type == "message" and not self.message_bucket.take()):
                raise FrameError(
                    "rate_limited", "Too many frames; wait a few seconds and retry.", client_msg_id
                )
            named = frame.fields.get("conversation_id")
            with log_context(customer_id=str(self.customer_id), conversation_id=named and str(named)):
                await getattr(self, f"on_{frame.type}")(frame)
        except FrameError as exc:
            await self._error(exc.code, exc.message, exc.client_msg_id)
        except ConversationError as exc:
            await self._error(exc.code, exc.message, client_msg_id)
        except OUTAGES:
            logger.exception("chat frame failed: a backing service is unreachable")
            await self._error(
                "unavailable", "We can't reach our storage right now; retry in a few seconds.", client_msg_id
            )
        except Exception:
            logger.exception("chat frame failed")
            await self._error("internal", "Something went wrong on our side; please retry.", client_msg_id)

    async def on_auth(self, frame: Frame) -> None:
        if self.customer_id is not None or self._authenticating:
            raise FrameError("invalid", "This socket is already authenticated.")
        try:
            customer_id = widget_token_verify(token=frame.token)
        except TokenInvalid:
            await self._close(CLOSE_UNAUTHENTICATED)
            return
        self._authenticating = True
        exists, open_id = await db_async(session.customer_open_conversation)(customer_id=customer_id)
        if not exists or self.closing:
            await self._close(CLOSE_UNAUTHENTICATED)
            return
        if not await slot_claim(customer_id=customer_id, socket_id=self.socket_id):
            await self._close(CLOSE_TOO_MANY_SOCKETS)
            return
        self.customer_id = customer_id  # from here on _release() frees the slot
        metrics.sockets_open.inc()
        if self._released:
            await slot_release(customer_id=customer_id, socket_id=self.socket_id)
            return
        self._auth_timer.cancel()
        sweeper().add(self)
        await self._join(customer_group(customer_id))
        last_seq = 0
        if open_id is not None:
            await self._follow(open_id)
            last_seq = await db_async(session.conversation_last_seq)(conversation_id=open_id)
            self.streams.follow(str(open_id), delivered_seq=last_seq)
        await self._send(
            {
                "type": "ready",
                "customer_id": str(customer_id),
                "conversation_id": str(open_id) if open_id else None,
                "last_seq": last_seq,
                "heartbeat_s": settings.CHAT_HEARTBEAT_S,
            }
        )

    async def on_resume(self, frame: Frame) -> None:
        conversation_id = str(frame.conversation_id)
        await self._check_owned(conversation_id)
        await self._follow(conversation_id)
        self.streams.rewind(conversation_id, frame.last_seq)
        # Up to the last seq as read now (later events reach this subscribed socket live), in pages.
        last_seq = await db_async(session.conversation_last_seq)(conversation_id=conversation_id)
        await self.streams.replay(conversation_id, after_seq=frame.last_seq, upto_seq=last_seq)
        self.streams.follow(conversation_id, delivered_seq=last_seq)
        await self._send({"type": "resumed", "conversation_id": conversation_id, "last_seq": last_seq})
        await self._partial_if_streaming(conversation_id)

    async def _partial_if_streaming(self, conversation_id: str) -> None:
        """The text so far of an answer that started before this socket joined the group."""
        partial = await turn_partial(conversation_id=conversation_id)
        if partial is not None:
            await self.streams.partial(conversation_id, *partial)

    async def on_message(self, frame: Frame) -> None:
        started = time.perf_counter()
        if await limit_hit(name="message_customer", key=str(self.customer_id)):
            raise FrameError(
                "rate_limited", "You are sending messages too fast; wait a minute and retry.",
                str(frame.client_msg_id),
            )
        new_id = str(uuid4())
        # A socket that follows no conversation yet listens to the one this message may start
        # before storing it: its answer can never begin streaming before the socket listens.
        prejoined = not self.streams.following()
        if prejoined:
            await self._follow(new_id)
        conversation_id = None
        try:
            receipt, committed = await db_async(session.message_receive_deferred)(
                customer_id=self.customer_id,
                client_msg_id=frame.client_msg_id,
                text=frame.text,
                conversation_id=frame.conversation_id,
                new_conversation_id=new_id,
            )
            message, conversation_id = receipt.message, str(receipt.conversation.pk)
        finally:
            if prejoined and conversation_id != new_id:
                await self._unfollow(new_id)
        await self._send(
            {
                "type": "ack",
                "client_msg_id": str(frame.client_msg_id),
                "conversation_id": conversation_id,
                "message_id": str(message.id),
                "seq": message.seq,
            }
        )
        metrics.acks_total.inc()
        metrics.ack_seconds.observe(time.perf_counter() - started)
        self.owned.add(conversation_id)
        if not self.streams.follows(conversation_id):
            # Not followed yet (a new conversation): follow, then fetch what committed before.
            await self._follow(conversation_id)
            self.streams.follow(conversation_id, delivered_seq=message.seq - 1)
            await self.streams.catch_up(conversation_id)
            await self._partial_if_streaming(conversation_id)
        await abroadcast_deferred(committed)
        if receipt.answer_due:
            await turn_kick(conversation_id=conversation_id)

    async def on_stop(self, frame: Frame) -> None:
        await self._check_owned(str(frame.conversation_id))
        await turn_stop(conversation_id=frame.conversation_id)

    async def on_tool_confirm(self, frame: Frame) -> None:
        from apps.connectors.services import tool_call_confirm

        await self._check_owned(str(frame.conversation_id))
        follow_up = await db_async(tool_call_confirm)(
            customer_id=str(self.customer_id), conversation_id=str(frame.conversation_id),
            call_id=frame.call_id, approve=frame.approve,
        )
        if follow_up:
            await turn_kick(conversation_id=frame.conversation_id)

    async def on_request_human(self, frame: Frame) -> None:
        await self._check_owned(str(frame.conversation_id))
        await db_async(conversation_request_human)(conversation_id=frame.conversation_id)

    async def on_typing(self, frame: Frame) -> None:
        await self._check_owned(str(frame.conversation_id))
        await aevent_broadcast(
            conversation_id=frame.conversation_id, type="typing", payload={"role": "customer", "on": frame.on}
        )

    async def on_ping(self, frame: Frame) -> None:
        await self._send({"type": "pong", "ts": frame.ts})
        await self.repair_gaps()

    async def on_csat(self, frame: Frame) -> None:
        await self._check_owned(str(frame.conversation_id))
        await db_async(conversation_rate)(
            conversation_id=frame.conversation_id, score=frame.score, comment=frame.comment or ""
        )

    # -- conversation events from the channel layer -------------------------------------

    async def conv_event(self, message: dict[str, Any]) -> None:
        event = message["event"]
        if self.closing:
            return
        if event["type"] == "typing" and event.get("role") == "customer":
            return  # the customer's own typing, from another of their tabs
        await self.streams.live(event, message.get("meta", {}))

    async def conv_started(self, message: dict[str, Any]) -> None:
        """A conversation of this customer started elsewhere: follow it from its first event."""
        conversation_id = message["conversation_id"]
        if self.closing or self.streams.follows(conversation_id):
            return
        await self._follow(conversation_id)
        self.streams.follow(conversation_id)
        await self.streams.catch_up(conversation_id)
        await self._partial_if_streaming(conversation_id)

    async def repair_gaps(self, marks: dict[str, int] | None = None) -> None:
        """Fetch from Postgres what this socket missed (a dropped broadcast): `marks` are the
        conversations' newest seqs as Redis knows them (read here when not given)."""
        if marks is None:
            marks = await conversation_marks(self.streams.following())
        for conversation_id, seq in marks.items():
            if seq > self.streams.last_seq(conversation_id) and self.streams.follows(conversation_id):
                await self.streams.catch_up(conversation_id)

    # -- helpers -----------------------------------------------------------------------

    async def _check_owned(self, conversation_id: str) -> None:
        if conversation_id not in self.owned:
            await db_async(conversation_get_for_customer)(
                customer_id=self.customer_id, conversation_id=conversation_id
            )
            self.owned.add(conversation_id)

    async def _join(self, group: str) -> None:
        await self.channel_layer.group_add(group, self.channel_name)
        self.joined.add(group)
        if self._released:  # closed meanwhile: do not stay in the group
            await self.channel_layer.group_discard(group, self.channel_name)

    async def _unfollow(self, conversation_id: str) -> None:
        self.streams.unfollow(conversation_id)
        self.owned.discard(conversation_id)
        group = conversation_group(conversation_id)
        if group in self.joined:
            self.joined.discard(group)
            await self.channel_layer.group_discard(group, self.channel_name)

    async def _follow(self, conversation_id: UUID | str) -> None:
        """Join the conversation's group (before any read of its seq: nothing falls between)."""
        conversation_id = str(conversation_id)
        self.owned.add(conversation_id)
        if self.streams.follows(conversation_id):
            return
        await self._join(conversation_group(conversation_id))
        if not self._released:
            self.streams.follow(conversation_id)

    async def _error(self, code: str, message: str, client_msg_id: str | None = None) -> None:
        event = {"type": "error", "code": code, "message": message}
        if client_msg_id is not None:
            event["client_msg_id"] = client_msg_id
        await self._send(event)
        if code in COUNTED_ERRORS and self.bad_frames.add():
            await self._close(CLOSE_POLICY)

    async def _send(self, event: dict[str, Any]) -> None:
        if self.closing:
            return
        try:
            text = json.dumps(event, separators=(",", ":"))
            await asyncio.wait_for(self.send(text_data=text), settings.CHAT_SEND_TIMEOUT_S)
        except TimeoutError:
            # uvicorn holds a send while the client's buffers are full: a client that reads
            # nothing is let go (what it missed stays in Postgres for its resume), and what
            # piles up meanwhile stays bounded by the channel layer's capacity.
            self._too_slow(f"a send waited {settings.CHAT_SEND_TIMEOUT_S} s")

    def _too_slow(self, why: str) -> None:
        logger.warning("closing a chat socket that read nothing: %s", why)
        asyncio.get_running_loop().create_task(self._close(CLOSE_TOO_SLOW))
