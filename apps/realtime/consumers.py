"""The customer chat socket, /ws/chat/ (PROTOCOL.md §2).

Declares its frames (schemas.py) and handlers; frame handling, limits, errors, follow/unfollow,
exactly-once delivery, the heartbeat and gap repair are the socket runtime's (runtime.py).
State changes go through the conversations/assistant services (on apps.core.db's pool, so one
socket's slow query never holds another's). The socket joins its customer's group at auth, so
a conversation of theirs that starts elsewhere (another tab, an agent, a CRM update) reaches
it too (`conv.started`).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any
from uuid import UUID

from django.conf import settings

from apps.assistant.turns import runner_start, turn_kick, turn_partial, turn_stop
from apps.conversations.events import abroadcast_deferred, aevent_broadcast, customer_group
from apps.conversations.selectors import (
    conversation_get_for_customer,
    conversation_last_seq,
    customer_open_conversation,
)
from apps.conversations.services import (
    conversation_rate,
    conversation_request_human,
    feedback_record,
)
from apps.core import metrics
from apps.core.acks_first import ACKS_FIRST_MAX_S, acking, acks_settled
from apps.core.db import db_async
from apps.customers.tokens import TokenInvalid, widget_token_verify

from . import chat_queries
from .limits import AUTH_TIMEOUT_S, COUNTED_ERRORS  # noqa: F401  (COUNTED_ERRORS: tests read it here)
from .runtime import CLOSE_POLICY, CLOSE_SILENT, CLOSE_TOO_SLOW, SocketConsumer  # noqa: F401
from .schemas import SCHEMAS, Frame, FrameError
from .socket_slots import conversation_begun_state, slot_claim, slot_release, slots_refresh

CLOSE_UNAUTHENTICATED = 4401
CLOSE_TOO_MANY_SOCKETS = 4429


class ChatConsumer(SocketConsumer):
    kind = "chat"
    schemas = SCHEMAS
    message_types = frozenset({"message"})

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.customer_id: UUID | None = None
        self._authenticating = False
        self._auth_timer: asyncio.TimerHandle | None = None
        self.owned: set[str] = set()  # conversations checked to be this customer's
        self.team: str | None = None  # the widget's `team` setting, from `auth`
        self.language, self.language_fixed = "", False  # the host page's language, from `auth`

    # -- declarations for the runtime ----------------------------------------------------

    @classmethod
    def heartbeat_s(cls) -> float:
        return settings.CHAT_HEARTBEAT_S

    @classmethod
    async def beat(cls, sockets: list[SocketConsumer]) -> None:
        await slots_refresh([(s.customer_id, s.socket_id) for s in sockets])

    def frame_admit(self, frame: Frame) -> None:
        if self.customer_id is None and frame.type != "auth":
            client_msg_id = str(frame.client_msg_id) if frame.type == "message" else None
            raise FrameError("unauthenticated", "Send `auth` with your widget token first.", client_msg_id)

    def log_fields(self, frame: Frame) -> dict[str, Any]:
        named = frame.fields.get("conversation_id")
        return {"customer_id": str(self.customer_id), "conversation_id": named and str(named)}

    def wants(self, event: dict[str, Any], meta: dict[str, Any]) -> bool:
        # Not the customer's own typing, from another of their tabs.
        return not (event["type"] == "typing" and event.get("role") == "customer")

    async def released(self) -> None:
        if self._auth_timer is not None:
            self._auth_timer.cancel()
        if self.customer_id is not None:
            metrics.sockets_open.dec()
            # The slot expires on its own after 3 heartbeats if this fails.
            await slot_release(customer_id=self.customer_id, socket_id=self.socket_id)

    # -- lifecycle ---------------------------------------------------------------------

    async def connect(self) -> None:
        runner_start()  # servers without ASGI lifespan (Daphne): answers run from the first socket on
        await self.accept()
        self._auth_timer = asyncio.get_running_loop().call_later(AUTH_TIMEOUT_S, self._auth_expired)

    def _auth_expired(self) -> None:
        if self.customer_id is None and not self._authenticating and not self.closing:
            asyncio.get_running_loop().create_task(self.close_with(CLOSE_UNAUTHENTICATED))

    # -- frames ------------------------------------------------------------------------

    async def on_auth(self, frame: Frame) -> None:
        if self.customer_id is not None or self._authenticating:
            raise FrameError("invalid", "This socket is already authenticated.")
        try:
            customer_id = widget_token_verify(token=frame.token)
        except TokenInvalid:
            await self.close_with(CLOSE_UNAUTHENTICATED)
            return
        self._authenticating = True
        exists, open_id = await db_async(customer_open_conversation)(customer_id=customer_id)
        if not exists or self.closing:
            await self.close_with(CLOSE_UNAUTHENTICATED)
            return
        if not await slot_claim(customer_id=customer_id, socket_id=self.socket_id):
            await self.close_with(CLOSE_TOO_MANY_SOCKETS)
            return
        if self._released:
            await slot_release(customer_id=customer_id, socket_id=self.socket_id)
            return
        self.customer_id = customer_id  # from here on released() frees the slot
        self.team = frame.fields.get("team")
        self.language = frame.fields.get("language") or ""
        self.language_fixed = bool(frame.fields.get("language_fixed"))
        metrics.sockets_open.inc()
        self._auth_timer.cancel()
        self.watch()
        await self.join(customer_group(customer_id))
        last_seq = 0
        if open_id is not None:
            await self.follow(open_id)
            last_seq = await db_async(conversation_last_seq)(conversation_id=open_id)
            self.streams.follow(str(open_id), delivered_seq=last_seq)
        await self.send_event(
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
        await self.follow(conversation_id)
        self.streams.rewind(conversation_id, frame.last_seq)
        # Up to the last seq as read now (later events reach this subscribed socket live), in pages.
        last_seq = await db_async(conversation_last_seq)(conversation_id=conversation_id)
        await self.streams.replay(conversation_id, after_seq=frame.last_seq, upto_seq=last_seq)
        self.streams.follow(conversation_id, delivered_seq=last_seq)
        await self.send_event({"type": "resumed", "conversation_id": conversation_id, "last_seq": last_seq})
        await self._partial_if_streaming(conversation_id)

    async def _partial_if_streaming(self, conversation_id: str) -> None:
        """The text so far of an answer that started before this socket joined the group."""
        partial = await turn_partial(conversation_id=conversation_id)
        if partial is not None:
            await self.streams.partial(conversation_id, *partial)

    async def _caught_up(self, conversation_id: str, seq: int) -> None:
        """After following a conversation this socket's message (seq `seq`) went to: what
        committed there before the follow, then an answer already streaming (a sweep after
        SWEEP_GRACE_S). A message that began the conversation (seq 1) has nothing before it,
        and an event committed since is published only after its seq mark is set in Redis
        (apps/conversations/publisher.py): when one Redis read shows no newer mark and no
        answer begun, Postgres has nothing to send. (A burst of new conversations spent about
        a seventh of the web process's CPU on those Postgres reads.)"""
        if seq == 1:
            newest, partial = await conversation_begun_state(conversation_id)
            if newest <= seq and partial is None:
                return  # its events, this message's first, reach the socket live
        await self.streams.catch_up(conversation_id)
        await self._partial_if_streaming(conversation_id)

    async def on_message(self, frame: Frame) -> None:
        with acking():  # this loop's answers wait for it (apps/core/acks_first.py)
            stored = await self._message_store_and_ack(frame)
        receipt, committed = await stored.settled()
        # The rest (following a new conversation, broadcasting to the customer's other tabs
        # and the console, kicking the answer) yields to other customers' pending acks first.
        await acks_settled(max_wait_s=ACKS_FIRST_MAX_S)
        conversation_id, message = str(receipt.conversation.pk), receipt.message
        self.owned.add(conversation_id)
        if not self.streams.follows(conversation_id):
            # Not followed yet (a new conversation): follow, then fetch what committed before.
            await self.follow(conversation_id)
            self.streams.follow(conversation_id, delivered_seq=message.seq - 1)
            await self._caught_up(conversation_id, message.seq)
        await abroadcast_deferred(committed)
        if receipt.answer_due:
            await turn_kick(conversation_id=conversation_id)

    async def _message_store_and_ack(self, frame: Frame) -> chat_queries.MessageStored:
        started = time.perf_counter()
        # A conversation this message starts is followed after the ack (`on_message`), before
        # its answer is kicked; what committed before that is caught up, and an answer that
        # began anyway (a sweep after SWEEP_GRACE_S) arrives as a `partial`, as on resume.
        try:
            stored = await chat_queries.message_receive(
                customer_id=self.customer_id, client_msg_id=frame.client_msg_id, text=frame.text,
                conversation_id=frame.conversation_id, team=self.team, language=self.language,
                language_fixed=self.language_fixed,
            )
        except chat_queries.MessageRateLimited as limited:  # RATELIMIT_MESSAGE_CUSTOMER
            raise FrameError(
                "rate_limited",
                f"You are sending messages too fast; wait {limited.retry_after_s} s and retry.",
                str(frame.client_msg_id),
            ) from None
        await self.send_event(
            {
                "type": "ack",
                "client_msg_id": str(frame.client_msg_id),
                "conversation_id": str(stored.conversation_id),
                "message_id": str(stored.message_id),
                "seq": stored.seq,
            }
        )
        metrics.acks_total.inc()
        metrics.ack_seconds.observe(time.perf_counter() - started)
        return stored

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

    async def on_csat(self, frame: Frame) -> None:
        await self._check_owned(str(frame.conversation_id))
        await db_async(conversation_rate)(
            conversation_id=frame.conversation_id, score=frame.score, comment=frame.comment or ""
        )

    async def on_feedback(self, frame: Frame) -> None:
        await self._check_owned(str(frame.conversation_id))
        await db_async(feedback_record)(
            customer_id=self.customer_id, conversation_id=frame.conversation_id,
            message_id=frame.message_id, helpful=frame.helpful, comment=frame.comment or "",
        )

    # -- from the channel layer ---------------------------------------------------------

    async def conv_started(self, message: dict[str, Any]) -> None:
        """A conversation of this customer started elsewhere: follow it from its first event."""
        conversation_id = message["conversation_id"]
        if self.closing or self.streams.follows(conversation_id):
            return
        await self.follow(conversation_id)
        self.streams.follow(conversation_id)
        await self.streams.catch_up(conversation_id)
        await self._partial_if_streaming(conversation_id)

    async def customer_erased(self, message: dict[str, Any]) -> None:
        """The customer's data was erased (apps/privacy): their token no longer names anyone."""
        await self.close_with(CLOSE_UNAUTHENTICATED)

    # -- helpers -----------------------------------------------------------------------

    async def _check_owned(self, conversation_id: str) -> None:
        if conversation_id not in self.owned:
            await db_async(conversation_get_for_customer)(
                customer_id=self.customer_id, conversation_id=conversation_id
            )
            self.owned.add(conversation_id)

    async def follow(self, conversation_id: UUID | str) -> None:
        self.owned.add(str(conversation_id))
        await super().follow(conversation_id)

    async def unfollow(self, conversation_id: UUID | str) -> None:
        self.owned.discard(str(conversation_id))
        await super().unfollow(conversation_id)
