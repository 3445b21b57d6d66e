"""The agent console socket, /ws/agent/ (PROTOCOL.md §3).

Thin like the chat socket: frames are validated by schemas.py, changes go through
services.py, and what reaches the agent comes from the channel layer: the customer-visible
events of each subscribed conversation from its `conv.<id>` group (delivered exactly once and
in order by apps/realtime/delivery.py, with gaps filled from Postgres), and agent-only events
(queue entries, notes, presence) from the console's own groups (groups.py).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Any
from uuid import uuid4

from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings

from apps.conversations.errors import ConversationError, ConversationNotFound
from apps.conversations.events import aevent_broadcast, conversation_group
from apps.conversations.selectors import event_page
from apps.core.db import db_async
from apps.realtime.delivery import ConversationStreams
from apps.realtime.limits import (
    COUNTED_ERRORS,
    FRAME_RATE,
    MESSAGE_RATE,
    OUTAGES,
    BadFrameWindow,
    TokenBucket,
)
from apps.realtime.schemas import Frame, FrameError

from . import auth, services, session
from .groups import AGENTS, agents_conversation_group, agroup_send
from .presence import PING_S, online_leave, online_touch, presence_set
from .schemas import frame_parse
from .selectors import agent_to_wire

logger = logging.getLogger(__name__)

CLOSE_FORBIDDEN = 4403
CLOSE_POLICY = 1008
CLOSE_SILENT = 1001


async def _fetch(
    conversation_id: str, after_seq: int, upto_seq: int | None, limit: int
) -> list[dict[str, Any]]:
    return await db_async(event_page)(
        conversation_id=conversation_id, after_seq=after_seq, upto_seq=upto_seq, limit=limit
    )


async def turns_stop_signal(turn_ids: list[str]) -> None:
    """Tell the assistant's runners now (their lease renewal would see the flag in seconds)."""
    if not turn_ids:
        return
    try:
        from apps.assistant import turns

        await turns.turns_stop_signal(turn_ids)
    except Exception:
        logger.exception("stop signal for turns %s not sent; runners see the flag on renewal", turn_ids)


class AgentConsumer(AsyncWebsocketConsumer):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.socket_id = uuid4().hex
        self.agent: Any = None
        self.session_key: str | None = None
        self.agent_wire: dict[str, Any] = {}
        self.closing = False
        self.last_seen = time.monotonic()
        self.streams = ConversationStreams(send=self._send, fetch=_fetch)
        self.notes_sent: dict[str, set[str]] = {}  # subscribed conversation -> note ids delivered
        self.tokens_from_start: dict[str, None] = {}  # answers streamed here from their first token
        self.bad_frames = BadFrameWindow()
        self.frame_bucket = TokenBucket(*FRAME_RATE)
        self.message_bucket = TokenBucket(*MESSAGE_RATE)
        self._watchdog: asyncio.Task | None = None

    # -- lifecycle ---------------------------------------------------------------------

    async def connect(self) -> None:
        user = self.scope.get("user")
        if not auth.console_allowed(user):
            await self.close(code=CLOSE_FORBIDDEN)  # before accept: HTTP 403 at the handshake
            return
        self.session_key = auth.session_key_of(self.scope)
        self.agent, self.agent_wire = user, agent_to_wire(user)
        await self.channel_layer.group_add(AGENTS, self.channel_name)
        await self.accept()
        await online_touch(agent_id=user.pk, socket_id=self.socket_id)
        self._watchdog = asyncio.get_running_loop().create_task(self._heartbeat())
        queue = await db_async(session.queue_for)(agent_id=user.pk)
        await self._send({"type": "agent_ready", "agent": self.agent_wire, "queue": queue})

    async def disconnect(self, code: int) -> None:
        self.closing = True
        if self._watchdog is not None:
            self._watchdog.cancel()
        if self.agent is None:
            return
        try:
            await self.channel_layer.group_discard(AGENTS, self.channel_name)
            for conversation_id in self.streams.following():
                await self._leave(conversation_id)
            await online_leave(agent_id=self.agent.pk, socket_id=self.socket_id)
        except Exception:  # presence entries expire on their own
            logger.exception("agent socket cleanup failed")

    async def _heartbeat(self) -> None:
        """Every CONSOLE_HEARTBEAT_S: close a silent socket, and (4403) one whose agent was
        deactivated, lost staff rights or was signed out since the socket opened."""
        while True:
            await asyncio.sleep(settings.CONSOLE_HEARTBEAT_S)
            if time.monotonic() - self.last_seen > 3 * PING_S:
                self.closing = True
                await self.close(CLOSE_SILENT)
                return
            try:
                current = await db_async(auth.console_user_current)(
                    session_key=self.session_key, agent_id=self.agent.pk
                )
            except Exception:  # Postgres away: every frame fails anyway; check again next beat
                logger.exception("agent socket: account re-check failed")
                continue
            if current is None:
                self.closing = True
                await self.close(CLOSE_FORBIDDEN)
                return
            self.agent = current  # role changes apply to the next frame

    # -- frames ------------------------------------------------------------------------

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        self.last_seen = time.monotonic()
        if self.closing:
            return
        client_msg_id = None
        try:
            frame = frame_parse(text_data, bytes_data)
            if frame.type in ("reply", "note"):
                client_msg_id = str(frame.client_msg_id)
            limited = frame.type in ("reply", "note") and not self.message_bucket.take()
            if not self.frame_bucket.take() or limited:
                raise FrameError(
                    "rate_limited", "Too many frames; wait a few seconds and retry.", client_msg_id
                )
            await getattr(self, f"on_{frame.type}")(frame)
        except FrameError as exc:
            await self._error(exc.code, exc.message, exc.client_msg_id)
        except ConversationError as exc:
            await self._error(exc.code, exc.message, client_msg_id)
        except OUTAGES:
            logger.exception("agent frame failed: a backing service is unreachable")
            await self._error(
                "unavailable", "We can't reach our storage right now; retry in a few seconds.", client_msg_id
            )
        except Exception:
            logger.exception("agent frame failed")
            await self._error("internal", "Something went wrong on our side; please retry.", client_msg_id)

    async def on_subscribe(self, frame: Frame) -> None:
        conversation_id = str(frame.conversation_id)
        if not self.streams.follows(conversation_id):
            # Join before reading the last seq, so nothing falls between replay and live.
            await self.channel_layer.group_add(conversation_group(conversation_id), self.channel_name)
            await self.channel_layer.group_add(agents_conversation_group(conversation_id), self.channel_name)
        self.streams.seq_sent[conversation_id] = frame.last_seq  # what the client holds
        replay = await db_async(session.subscribe_replay)(conversation_id=conversation_id)
        if replay is None:
            await self._leave(conversation_id, announce=False)
            raise ConversationNotFound("No conversation has this id.")
        await self.streams.replay(conversation_id, after_seq=frame.last_seq, upto_seq=replay.last_seq)
        # A last_seq beyond the conversation's (a client bug) must not hide the events to come.
        self.streams.seq_sent[conversation_id] = replay.last_seq
        self.notes_sent[conversation_id] = set()
        for note in replay.notes:
            await self._note(note, conversation_id)
        last_seq = self.streams.last_seq(conversation_id)
        await self._send({"type": "subscribed", "conversation_id": conversation_id, "last_seq": last_seq})
        partial = await session.answer_partial(conversation_id=conversation_id)
        if partial is not None:
            await self.streams.partial(conversation_id, *partial)
        await self._presence(conversation_id, viewing=True)
        await db_async(services.conversation_read)(conversation_id=conversation_id, seq=last_seq)

    async def on_unsubscribe(self, frame: Frame) -> None:
        await self._leave(str(frame.conversation_id))

    async def on_claim(self, frame: Frame) -> None:
        takeover = await db_async(services.conversation_claim)(
            conversation_id=frame.conversation_id, agent=self.agent
        )
        await turns_stop_signal(takeover.stopped_turn_ids)

    async def on_assign(self, frame: Frame) -> None:
        takeover = await db_async(services.conversation_assign)(
            conversation_id=frame.conversation_id, agent_id=frame.agent_id, by=self.agent
        )
        await turns_stop_signal(takeover.stopped_turn_ids)

    async def on_release(self, frame: Frame) -> None:
        await db_async(services.conversation_release)(conversation_id=frame.conversation_id, agent=self.agent)

    async def on_close(self, frame: Frame) -> None:
        takeover = await db_async(services.conversation_close)(
            conversation_id=frame.conversation_id, agent=self.agent
        )
        await turns_stop_signal(takeover.stopped_turn_ids)

    async def on_reply(self, frame: Frame) -> None:
        message, _ = await db_async(services.agent_reply)(
            conversation_id=frame.conversation_id,
            agent=self.agent,
            client_msg_id=frame.client_msg_id,
            text=frame.text,
        )
        await self._send(
            {
                "type": "ack",
                "client_msg_id": str(frame.client_msg_id),
                "conversation_id": str(frame.conversation_id),
                "message_id": str(message.id),
                "seq": message.seq,
            }
        )

    async def on_note(self, frame: Frame) -> None:
        note, _ = await db_async(services.note_create)(
            conversation_id=frame.conversation_id,
            agent=self.agent,
            client_msg_id=frame.client_msg_id,
            text=frame.text,
        )
        await self._send(
            {
                "type": "ack",
                "client_msg_id": str(frame.client_msg_id),
                "conversation_id": str(frame.conversation_id),
                "note_id": str(note.id),
            }
        )

    async def on_typing(self, frame: Frame) -> None:
        conversation_id = str(frame.conversation_id)
        # The customer sees an agent typing only from the agent who has the conversation;
        # the other agents see everyone typing (replies and notes alike) through presence.
        if await db_async(session.assigned_to)(conversation_id=conversation_id, agent_id=self.agent.pk):
            await aevent_broadcast(
                conversation_id=conversation_id, type="typing", payload={"role": "agent", "on": frame.on}
            )
        if self.streams.follows(conversation_id):
            await self._presence(conversation_id, viewing=True, typing=frame.on)

    async def on_ping(self, frame: Frame) -> None:
        await self._send({"type": "pong", "ts": frame.ts})
        await online_touch(agent_id=self.agent.pk, socket_id=self.socket_id)
        for conversation_id in self.streams.following():  # keep presence entries from expiring
            await presence_set(
                conversation_id=conversation_id, socket_id=self.socket_id, agent=self.agent_wire, viewing=True
            )

    # -- from the channel layer --------------------------------------------------------

    async def conv_event(self, message: dict[str, Any]) -> None:
        if self.closing:
            return
        event, meta = message["event"], message.get("meta") or {}
        if event["type"] == "token" and not self._token_placeable(event, meta):
            return
        try:
            delivered = await self.streams.live(event, meta)
            if delivered and event["type"] == "message" and event["message"]["role"] == "customer":
                # Shown to an agent who has the conversation open: no longer unread.
                await db_async(services.conversation_read)(
                    conversation_id=event["conversation_id"], seq=event["seq"]
                )
        except OUTAGES:  # the gap is repaired by the next event, or by the client's resubscribe
            logger.exception("agent socket: gap repair failed, a backing service is unreachable")

    async def console_event(self, message: dict[str, Any]) -> None:
        event = message["event"]
        if self.closing:
            return
        if event["type"] == "conversation":
            await self._send(event)
        elif event["type"] == "note":
            await self._note(event["note"], event["conversation_id"])
        elif self.streams.follows(event.get("conversation_id")):
            await self._send(event)

    # -- helpers -----------------------------------------------------------------------

    def _token_placeable(self, event: dict[str, Any], meta: dict[str, Any]) -> bool:
        """A token the agent can append to what it shows: its answer started on this socket
        (first token or a `partial`). A later token alone (the partial was already gone when
        the agent subscribed) is dropped; the final `message` brings the whole text."""
        message_id = event["message_id"]
        if message_id in self.streams.partial_len or message_id in self.tokens_from_start:
            return True
        if meta.get("offset", 0) > 0:
            return False
        self.tokens_from_start[message_id] = None
        if len(self.tokens_from_start) > 64:
            self.tokens_from_start.pop(next(iter(self.tokens_from_start)))
        return True

    async def _note(self, note: dict[str, Any], conversation_id: str) -> None:
        sent = self.notes_sent.get(conversation_id)
        if sent is None or note["id"] in sent:
            return  # not subscribed, or already delivered by the subscribe replay
        sent.add(note["id"])
        await self._send({"type": "note", "conversation_id": conversation_id, "note": note})

    async def _presence(self, conversation_id: str, *, viewing: bool, typing: bool = False) -> None:
        event = await presence_set(
            conversation_id=conversation_id,
            socket_id=self.socket_id,
            agent=self.agent_wire,
            viewing=viewing,
            typing=typing,
        )
        await agroup_send(agents_conversation_group(conversation_id), event)

    async def _leave(self, conversation_id: str, *, announce: bool = True) -> None:
        self.streams.unfollow(conversation_id)
        self.notes_sent.pop(conversation_id, None)
        await self.channel_layer.group_discard(conversation_group(conversation_id), self.channel_name)
        await self.channel_layer.group_discard(agents_conversation_group(conversation_id), self.channel_name)
        if announce:
            await self._presence(conversation_id, viewing=False)

    async def _error(self, code: str, message: str, client_msg_id: str | None = None) -> None:
        event = {"type": "error", "code": code, "message": message}
        if client_msg_id is not None:
            event["client_msg_id"] = client_msg_id
        await self._send(event)
        if code in COUNTED_ERRORS and self.bad_frames.add():
            self.closing = True
            await self.close(CLOSE_POLICY)

    async def _send(self, event: dict[str, Any]) -> None:
        if not self.closing:
            await self.send(text_data=json.dumps(event, separators=(",", ":")))
