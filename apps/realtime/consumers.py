"""The customer chat socket, /ws/chat/ (PROTOCOL.md §2).

Thin by design: frames are validated by schemas.py, state changes go through the
conversations/assistant services, and conversation events arrive from the channel layer
(apps/conversations/events.py) to be forwarded. What lives here is per-socket bookkeeping:
which conversations this socket follows and the last `seq` it delivered of each, so that
every durable event reaches the client exactly once and in order (live events that overlap
a replay are dropped; a gap is filled from Postgres).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Any
from uuid import UUID, uuid4

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings
from django.db import InterfaceError, OperationalError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from apps.assistant.turns import turn_partial, turn_request, turn_stop
from apps.conversations.errors import ConversationError
from apps.conversations.events import abroadcast_deferred, aevent_broadcast, conversation_group
from apps.conversations.selectors import conversation_get_for_customer, event_list
from apps.conversations.services import conversation_rate, conversation_request_human
from apps.customers.tokens import TokenInvalid, widget_token_verify

from . import session
from .limits import AUTH_TIMEOUT_S, FRAME_RATE, MESSAGE_RATE, BadFrameWindow, TokenBucket
from .presence import slot_claim, slot_release, sweeper
from .schemas import Frame, FrameError, frame_parse

logger = logging.getLogger(__name__)

CLOSE_UNAUTHENTICATED = 4401
CLOSE_TOO_MANY_SOCKETS = 4429
CLOSE_POLICY = 1008
CLOSE_SILENT = 1001
# Errors a client causes; enough of them within the window closes the socket.
COUNTED_ERRORS = frozenset(
    {
        "bad_json",
        "too_large",
        "unknown_type",
        "invalid",
        "unauthenticated",
        "forbidden",
        "not_found",
        "rate_limited",
    }
)
_ENDED_KEPT = 64
# Postgres or Redis away: the client should retry (`unavailable`), not report a bug (`internal`).
OUTAGES = (OperationalError, InterfaceError, RedisConnectionError, RedisTimeoutError)


def _db(fn):
    return database_sync_to_async(fn)


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
        self.seq_sent: dict[str, int] = {}  # followed conversation -> last seq delivered
        self.owned: set[str] = set()  # conversations checked to be this customer's
        self.ended: dict[str, None] = {}  # answers whose message_end was delivered (recent)
        self.partial_len: dict[str, int] = {}  # answer -> length of the `partial` delivered
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
        for conversation_id in list(self.seq_sent):
            try:
                await self.channel_layer.group_discard(conversation_group(conversation_id), self.channel_name)
            except Exception:
                logger.exception("leaving group of conversation %s failed", conversation_id)
        self.seq_sent.clear()
        if self.customer_id is not None:
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
        exists, open_id = await _db(session.customer_open_conversation)(customer_id=customer_id)
        if not exists or self.closing:
            await self._close(CLOSE_UNAUTHENTICATED)
            return
        if not await slot_claim(customer_id=customer_id, socket_id=self.socket_id):
            await self._close(CLOSE_TOO_MANY_SOCKETS)
            return
        self.customer_id = customer_id  # from here on _release() frees the slot
        if self._released:
            await slot_release(customer_id=customer_id, socket_id=self.socket_id)
            return
        self._auth_timer.cancel()
        sweeper().add(self)
        last_seq = 0
        if open_id is not None:
            await self._follow(open_id)
            last_seq = await _db(session.conversation_last_seq)(conversation_id=open_id)
            self.seq_sent[str(open_id)] = last_seq
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
        events, last_seq = await _db(session.conversation_replay)(
            conversation_id=conversation_id, after_seq=frame.last_seq
        )
        for event in events:
            await self._deliver(event)
        self.seq_sent[conversation_id] = max(last_seq, self.seq_sent.get(conversation_id, 0))
        await self._send({"type": "resumed", "conversation_id": conversation_id, "last_seq": last_seq})
        partial = await turn_partial(conversation_id=conversation_id)
        if partial is not None and partial[0] not in self.ended:
            message_id, text = partial
            self.partial_len[message_id] = len(text)
            await self._send(
                {
                    "type": "partial",
                    "conversation_id": conversation_id,
                    "message_id": message_id,
                    "text": text,
                }
            )

    async def on_message(self, frame: Frame) -> None:
        receipt, committed = await _db(session.message_receive_deferred)(
            customer_id=self.customer_id,
            client_msg_id=frame.client_msg_id,
            text=frame.text,
            conversation_id=frame.conversation_id,
            new_conversation_id=uuid4(),
        )
        message, conversation_id = receipt.message, str(receipt.conversation.pk)
        await self._send(
            {
                "type": "ack",
                "client_msg_id": str(frame.client_msg_id),
                "conversation_id": conversation_id,
                "message_id": str(message.id),
                "seq": message.seq,
            }
        )
        self.owned.add(conversation_id)
        if conversation_id not in self.seq_sent:
            # Not followed yet (a new conversation): follow, then fetch what committed before.
            await self._follow(conversation_id)
            self.seq_sent[conversation_id] = message.seq - 1
            await self._catch_up(conversation_id)
        await abroadcast_deferred(committed)
        if receipt.answer_due:
            await turn_request(conversation_id=conversation_id)

    async def on_stop(self, frame: Frame) -> None:
        await self._check_owned(str(frame.conversation_id))
        await turn_stop(conversation_id=frame.conversation_id)

    async def on_request_human(self, frame: Frame) -> None:
        await self._check_owned(str(frame.conversation_id))
        await _db(conversation_request_human)(conversation_id=frame.conversation_id)

    async def on_typing(self, frame: Frame) -> None:
        await self._check_owned(str(frame.conversation_id))
        await aevent_broadcast(
            conversation_id=frame.conversation_id, type="typing", payload={"role": "customer", "on": frame.on}
        )

    async def on_ping(self, frame: Frame) -> None:
        await self._send({"type": "pong", "ts": frame.ts})

    async def on_csat(self, frame: Frame) -> None:
        await self._check_owned(str(frame.conversation_id))
        await _db(conversation_rate)(
            conversation_id=frame.conversation_id, score=frame.score, comment=frame.comment or ""
        )

    # -- conversation events from the channel layer -------------------------------------

    async def conv_event(self, message: dict[str, Any]) -> None:
        event = message["event"]
        conversation_id = event.get("conversation_id")
        sent = self.seq_sent.get(conversation_id)
        if self.closing or sent is None:
            return
        seq = event.get("seq")
        if seq is not None:
            if seq <= sent:
                return  # already delivered by a replay
            if seq > sent + 1:
                # An earlier event is still on its way (another process): Postgres has it already,
                # because seqs are given out under the conversation's row lock.
                await self._catch_up(conversation_id)
            if seq == self.seq_sent[conversation_id] + 1:
                await self._deliver(event)
            return
        if event["type"] == "token":
            event = self._token_after_partial(event, message.get("meta", {}).get("offset", 0))
        elif event["type"] == "typing" and event.get("role") == "customer":
            return  # the customer's own typing, from another of their tabs
        if event is not None:
            await self._send(event)

    def _token_after_partial(self, event: dict[str, Any], offset: int) -> dict[str, Any] | None:
        """Drop (the part of) a token that the `partial` sent on resume already held."""
        message_id = event["message_id"]
        if message_id in self.ended:
            return None
        covered = self.partial_len.get(message_id)
        if covered is None or offset >= covered:
            return event
        text = event["text"]
        if offset + len(text) <= covered:
            return None
        return {**event, "text": text[covered - offset :]}

    # -- helpers -----------------------------------------------------------------------

    async def _check_owned(self, conversation_id: str) -> None:
        if conversation_id not in self.owned:
            await _db(conversation_get_for_customer)(
                customer_id=self.customer_id, conversation_id=conversation_id
            )
            self.owned.add(conversation_id)

    async def _follow(self, conversation_id: UUID | str) -> None:
        """Join the conversation's group (before any read of its seq: nothing falls between)."""
        conversation_id = str(conversation_id)
        self.owned.add(conversation_id)
        if conversation_id in self.seq_sent:
            return
        await self.channel_layer.group_add(conversation_group(conversation_id), self.channel_name)
        if self._released:  # closed meanwhile: do not stay in the group
            await self.channel_layer.group_discard(conversation_group(conversation_id), self.channel_name)
            return
        self.seq_sent[conversation_id] = 0

    async def _catch_up(self, conversation_id: str) -> None:
        events = await _db(event_list)(
            conversation_id=conversation_id, after_seq=self.seq_sent[conversation_id]
        )
        for event in events:
            if event["seq"] == self.seq_sent[conversation_id] + 1:
                await self._deliver(event)

    async def _deliver(self, event: dict[str, Any]) -> None:
        """Send a durable event and remember it."""
        await self._send(event)
        conversation_id = event["conversation_id"]
        self.seq_sent[conversation_id] = max(event["seq"], self.seq_sent.get(conversation_id, 0))
        if event["type"] == "message_end":
            self.ended[event["message_id"]] = None
            self.partial_len.pop(event["message_id"], None)
            if len(self.ended) > _ENDED_KEPT:
                self.ended.pop(next(iter(self.ended)))

    async def _error(self, code: str, message: str, client_msg_id: str | None = None) -> None:
        event = {"type": "error", "code": code, "message": message}
        if client_msg_id is not None:
            event["client_msg_id"] = client_msg_id
        await self._send(event)
        if code in COUNTED_ERRORS and self.bad_frames.add():
            await self._close(CLOSE_POLICY)

    async def _send(self, event: dict[str, Any]) -> None:
        if not self.closing:
            await self.send(text_data=json.dumps(event, separators=(",", ":")))
