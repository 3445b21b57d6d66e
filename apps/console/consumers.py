"""The agent console socket, /ws/agent/ (PROTOCOL.md §3).

Declares its frames (schemas.py) and handlers on the socket runtime (apps/realtime/runtime.py),
which owns frame handling, limits, errors, follow/unfollow, exactly-once delivery, the heartbeat
and gap repair. Changes go through services.py; what reaches the agent comes from the channel
layer: the customer-visible events of each subscribed conversation from its `conv.<id>` group,
and agent-only events (queue entries, notes, presence) from the console's own groups (groups.py).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from typing import Any

from django.conf import settings

from apps.audit.context import audit_ip_set
from apps.conversations.errors import ConversationNotFound
from apps.conversations.events import (
    abroadcast_deferred,
    aevent_broadcast,
    conversation_group,
    with_broadcasts_deferred,
)
from apps.conversations.selectors import conversation_assigned_to
from apps.core.db import db_async
from apps.realtime.runtime import SocketConsumer
from apps.realtime.schemas import Frame

from . import agent_queries, auth, services
from .groups import AGENTS, agents_conversation_group
from .presence import PING_S, online_leave, online_touch, presence_publish, presence_set
from .schemas import SCHEMAS, WITH_CLIENT_MSG_ID
from .selectors import agent_to_wire
from .visibility import Viewer

logger = logging.getLogger(__name__)

CLOSE_FORBIDDEN = 4403


async def turns_stop_signal(turn_ids: list[str]) -> None:
    """Tell the assistant's runners now (their lease renewal would see the flag in seconds)."""
    if not turn_ids:
        return
    try:
        from apps.assistant import turns

        await turns.turns_stop_signal(turn_ids)
    except Exception:
        logger.exception("stop signal for turns %s not sent; runners see the flag on renewal", turn_ids)


class AgentConsumer(SocketConsumer):
    kind = "agent"
    schemas = SCHEMAS
    message_types = WITH_CLIENT_MSG_ID

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.agent: Any = None
        self.session_key: str | None = None
        self.agent_wire: dict[str, Any] = {}
        self.notes_sent: dict[str, set[str]] = {}  # subscribed conversation -> note ids delivered
        self.tokens_from_start: dict[str, None] = {}  # answers streamed here from their first token
        self.viewer: Viewer | None = None  # which queue entries this agent may see (visibility.py)
        self.shown: set[str] = set()  # an agent's (not a lead's) visible conversations, to tell of a move

    # -- declarations for the runtime ----------------------------------------------------

    @classmethod
    def heartbeat_s(cls) -> float:
        return settings.CONSOLE_HEARTBEAT_S

    @classmethod
    def silent_after_s(cls) -> float:
        return 3 * PING_S  # the console pings every PING_S, whatever the account re-check's pace

    @classmethod
    async def beat(cls, sockets: list[SocketConsumer]) -> None:
        await asyncio.gather(*(sock.account_recheck() for sock in sockets))

    def log_fields(self, frame: Frame) -> dict[str, Any]:
        named = frame.fields.get("conversation_id")
        return {"agent_id": self.agent.pk, "conversation_id": named and str(named)}

    def groups_of(self, conversation_id: str) -> Iterable[str]:
        return (conversation_group(conversation_id), agents_conversation_group(conversation_id))

    def wants(self, event: dict[str, Any], meta: dict[str, Any]) -> bool:
        return event["type"] != "token" or self._token_placeable(event, meta)

    async def delivered(self, event: dict[str, Any]) -> None:
        if event["type"] == "message" and event["message"]["role"] == "customer":
            # Shown to an agent who has the conversation open: no longer unread.
            await db_async(services.conversation_read)(
                conversation_id=event["conversation_id"], seq=event["seq"]
            )

    async def released(self) -> None:
        if self.agent is None:
            return
        for conversation_id in self.streams.following():
            await self._presence(conversation_id, viewing=False)
        await online_leave(agent_id=self.agent.pk, socket_id=self.socket_id)

    async def account_recheck(self) -> None:
        """Each heartbeat (h4's account re-check): close (4403) a socket whose agent was
        deactivated, lost staff rights or was signed out since the socket opened."""
        if self.closing:
            return
        try:
            current = await db_async(agent_queries.agent_current)(
                session_key=self.session_key, agent_id=self.agent.pk
            )
        except Exception:  # Postgres away: every frame fails anyway; check again next beat
            logger.exception("agent socket: account re-check failed")
            return
        if current is None:
            await self.close_with(CLOSE_FORBIDDEN)
        else:
            self.agent, self.viewer = current  # role and team changes apply to the next frame

    # -- lifecycle ---------------------------------------------------------------------

    async def connect(self) -> None:
        user = self.scope.get("user")
        if not auth.console_allowed(user):
            await self.close(code=CLOSE_FORBIDDEN)  # before accept: HTTP 403 at the handshake
            return
        self.session_key = auth.session_key_of(self.scope)
        audit_ip_set((self.scope.get("client") or [None])[0])  # this socket's task: its audit rows' IP
        self.agent, self.agent_wire = user, agent_to_wire(user)
        await self.join(AGENTS)
        await self.accept()
        await online_touch(agent_id=user.pk, socket_id=self.socket_id)
        self.watch()
        self.viewer, queue = await db_async(agent_queries.ready_for)(user=user)
        self.shown = set() if self.viewer.sees_all else {entry["id"] for entry in queue}
        await self.send_event({"type": "agent_ready", "agent": self.agent_wire, "queue": queue})

    # -- frames ------------------------------------------------------------------------

    async def on_subscribe(self, frame: Frame) -> None:
        conversation_id = str(frame.conversation_id)
        await self.follow(conversation_id)  # before reading the last seq
        self.streams.rewind(conversation_id, frame.last_seq)  # what the client holds
        replay = await db_async(agent_queries.subscribe_replay)(
            conversation_id=conversation_id, viewer=self.viewer
        )
        if replay is None:
            await self._leave(conversation_id, announce=False)
            raise ConversationNotFound("No conversation has this id.")
        await self.streams.replay(conversation_id, after_seq=frame.last_seq, upto_seq=replay.last_seq)
        if frame.last_seq > replay.last_seq:
            # A last_seq beyond the conversation's (a client bug) must not hide the events to come.
            self.streams.rewind(conversation_id, replay.last_seq)
        self.notes_sent[conversation_id] = set()
        for note in replay.notes:
            await self._note(note, conversation_id)
        last_seq = self.streams.last_seq(conversation_id)
        subscribed = {"type": "subscribed", "conversation_id": conversation_id, "last_seq": last_seq}
        await self.send_event(subscribed)
        partial = await agent_queries.answer_partial(conversation_id=conversation_id)
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
        # One trip to a database thread before the ack; the reply's events leave from the loop
        # and its queue entry follows off it. Once stored, the events go out even if the ack
        # fails or this socket closes now: the customer's socket repairs gaps from the seq
        # marks they set, so a reply never broadcast would wait for the conversation's next event.
        (message, _), committed = await db_async(with_broadcasts_deferred)(
            services.agent_reply,
            conversation_id=frame.conversation_id,
            agent=self.agent,
            client_msg_id=frame.client_msg_id,
            text=frame.text,
        )
        broadcast = asyncio.ensure_future(abroadcast_deferred(committed))
        try:
            await self.send_event(
                {
                    "type": "ack",
                    "client_msg_id": str(frame.client_msg_id),
                    "conversation_id": str(frame.conversation_id),
                    "message_id": str(message.id),
                    "seq": message.seq,
                }
            )
        finally:
            await asyncio.shield(broadcast)

    async def on_note(self, frame: Frame) -> None:
        note, _ = await db_async(services.note_create)(
            conversation_id=frame.conversation_id,
            agent=self.agent,
            client_msg_id=frame.client_msg_id,
            text=frame.text,
        )
        await self.send_event(
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
        if await db_async(conversation_assigned_to)(conversation_id=conversation_id, agent_id=self.agent.pk):
            await aevent_broadcast(
                conversation_id=conversation_id, type="typing", payload={"role": "agent", "on": frame.on}
            )
        if self.streams.follows(conversation_id):
            await self._presence(conversation_id, viewing=True, typing=frame.on)

    async def on_ping(self, frame: Frame) -> None:
        await super().on_ping(frame)
        await online_touch(agent_id=self.agent.pk, socket_id=self.socket_id)
        for conversation_id in self.streams.following():  # keep presence entries from expiring
            await presence_set(
                conversation_id=conversation_id, socket_id=self.socket_id, agent=self.agent_wire, viewing=True
            )

    # -- from the console's groups -----------------------------------------------------

    async def console_event(self, message: dict[str, Any]) -> None:
        event = message["event"]
        if self.closing:
            return
        if event["type"] == "conversation":
            await self._queue_entry(event)
        elif event["type"] == "sla_breach":
            if self.viewer.sees_all or event["conversation_id"] in self.shown:  # its team's only
                await self.send_event(event)
        elif event["type"] == "note":
            await self._note(event["note"], event["conversation_id"])
        elif self.streams.follows(event.get("conversation_id")):
            await self.send_event(event)

    # -- helpers -----------------------------------------------------------------------

    async def _queue_entry(self, event: dict[str, Any]) -> None:
        """Every console hears every entry; this agent gets those they may see. One that moved
        out of their sight (another team, another assignee) is dropped from their queue."""
        conversation_id = event["conversation"]["id"]
        if self.viewer.sees_entry(event["conversation"]):
            if not self.viewer.sees_all:
                self.shown.add(conversation_id)
            await self.send_event(event)
            return
        followed = self.streams.follows(conversation_id)
        if followed:
            await self._leave(conversation_id)
        if conversation_id in self.shown or followed:
            self.shown.discard(conversation_id)
            await self.send_event({"type": "conversation_removed", "conversation_id": conversation_id})

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
        await self.send_event({"type": "note", "conversation_id": conversation_id, "note": note})

    async def _presence(self, conversation_id: str, *, viewing: bool, typing: bool = False) -> None:
        await presence_publish(
            conversation_id=conversation_id,
            socket_id=self.socket_id,
            agent=self.agent_wire,
            viewing=viewing,
            typing=typing,
        )

    async def _leave(self, conversation_id: str, *, announce: bool = True) -> None:
        await self.unfollow(conversation_id)
        self.notes_sent.pop(conversation_id, None)
        if announce:
            await self._presence(conversation_id, viewing=False)
