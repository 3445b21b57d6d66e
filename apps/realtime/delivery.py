"""Exactly-once, in-order delivery of conversation events to one socket (chat or console), used
by the socket runtime (runtime.py).

A socket follows some conversations; for each it remembers the last durable `seq` it sent.
Live events from the channel layer that a replay already delivered are dropped, a gap (a lost
or not-yet-arrived broadcast) is filled from Postgres, and live `token` deltas that a `partial`
already covered are trimmed. Channel-layer group membership stays with the consumer: this
module only decides what to send.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

Event = dict[str, Any]
Send = Callable[[Event], Awaitable[None]]
# (conversation_id, after_seq, upto_seq or None, limit) -> one page from Postgres: the first
# `limit` durable events with after_seq < seq [<= upto_seq], in seq order.
Fetch = Callable[[str, int, int | None, int], Awaitable[list[Event]]]

_ENDED_KEPT = 64
# Events read per query in a replay or gap repair: a socket never holds a whole long
# conversation in memory, and each query stays short.
PAGE_SIZE = 500


class ConversationStreams:
    def __init__(self, *, send: Send, fetch: Fetch, page_size: int | None = None) -> None:
        self._send = send
        self._fetch = fetch
        self.page_size = page_size or PAGE_SIZE
        self.seq_sent: dict[str, int] = {}  # followed conversation -> last seq delivered
        self.ended: dict[str, None] = {}  # answers whose message_end was delivered (recent)
        self.partial_len: dict[str, int] = {}  # answer -> length of the text a `partial` delivered
        self.shown_len: dict[str, int] = {}  # answer -> length of the text the client holds of it
        # A socket's frames and the heartbeat's gap repair run as separate tasks: one delivery at a
        # time, or two of them could each see seq n as unsent and both send it (each awaits its
        # send before marking it sent).
        self._lock = asyncio.Lock()

    # -- following --------------------------------------------------------------------

    def follows(self, conversation_id: str) -> bool:
        return conversation_id in self.seq_sent

    def following(self) -> list[str]:
        return list(self.seq_sent)

    def follow(self, conversation_id: str, *, delivered_seq: int = 0) -> None:
        """Start following (or move the mark forward): events up to `delivered_seq` count as sent."""
        self.seq_sent[conversation_id] = max(delivered_seq, self.seq_sent.get(conversation_id, 0))

    def rewind(self, conversation_id: str, delivered_seq: int) -> None:
        """The client holds events up to `delivered_seq` only (a resume): send the rest again."""
        self.seq_sent[conversation_id] = delivered_seq

    def unfollow(self, conversation_id: str) -> None:
        self.seq_sent.pop(conversation_id, None)

    def last_seq(self, conversation_id: str) -> int:
        return self.seq_sent.get(conversation_id, 0)

    # -- sending ----------------------------------------------------------------------

    async def replay(self, conversation_id: str, *, after_seq: int, upto_seq: int) -> None:
        """Send the stored events with after_seq < seq <= upto_seq (a resume/subscribe replay),
        a page at a time, skipping what was sent."""
        async with self._lock:
            while after_seq < upto_seq:
                page = await self._fetch(conversation_id, after_seq, upto_seq, self.page_size)
                for event in page:
                    if event["seq"] > self.seq_sent.get(conversation_id, 0):
                        await self._deliver(event)
                if len(page) < self.page_size:
                    return
                after_seq = page[-1]["seq"]

    async def catch_up(self, conversation_id: str) -> None:
        """Send whatever Postgres holds after the last seq delivered (gap repair)."""
        async with self._lock:
            await self._catch_up(conversation_id)

    async def _catch_up(self, conversation_id: str) -> None:
        while conversation_id in self.seq_sent:
            after_seq = self.seq_sent[conversation_id]
            page = await self._fetch(conversation_id, after_seq, None, self.page_size)
            for event in page:
                if event["seq"] == self.seq_sent.get(conversation_id, -1) + 1:
                    await self._deliver(event)
            if len(page) < self.page_size or self.seq_sent.get(conversation_id) == after_seq:
                return  # the end, or a page that did not continue what was sent

    async def partial(self, conversation_id: str, message_id: str, text: str) -> None:
        """Send the whole text so far of an answer being generated (after a replay)."""
        async with self._lock:
            if message_id in self.ended:
                return
            self.partial_len[message_id] = self.shown_len[message_id] = len(text)
            await self._send({
                "type": "partial", "conversation_id": conversation_id, "message_id": message_id, "text": text,
            })

    async def live(self, event: Event, meta: dict[str, Any]) -> bool:
        """A conversation event from the channel layer; False when it was not sent."""
        async with self._lock:
            return await self._live(event, meta)

    async def _live(self, event: Event, meta: dict[str, Any]) -> bool:
        conversation_id = event.get("conversation_id")
        sent = self.seq_sent.get(conversation_id)
        if sent is None:
            return False
        seq = event.get("seq")
        if seq is not None:
            if seq <= sent:
                return False  # already delivered by a replay
            if seq > sent + 1:
                # An earlier event is still on its way (another process) or was dropped: Postgres
                # has it already, because seqs are given out under the conversation's row lock.
                await self._catch_up(conversation_id)
            if seq == self.seq_sent.get(conversation_id, -1) + 1:
                await self._deliver(event)
                return True
            return False
        if event["type"] == "token":
            event = self._token_after_partial(event, meta.get("offset", 0))
        elif event["type"] == "partial":  # a restarted answer (another process took it over)
            if event["message_id"] in self.ended:
                return False
            self.partial_len[event["message_id"]] = self.shown_len[event["message_id"]] = len(event["text"])
        if event is None:
            return False
        await self._send(event)
        return True

    def _token_after_partial(self, event: Event, offset: int) -> Event | None:
        """The part of a token the client does not hold yet, or None. A token that would
        leave a hole (its beginning went out before this socket listened, and no `partial`
        filled it) is dropped too: the client then shows the answer at its `message_end`."""
        message_id = event["message_id"]
        if message_id in self.ended:
            return None
        held = self.shown_len.get(message_id, 0)
        text = event["text"]
        if offset > held or offset + len(text) <= held:
            return None
        self.shown_len[message_id] = offset + len(text)
        return event if offset == held else {**event, "text": text[held - offset :]}

    async def _deliver(self, event: Event) -> None:
        """Send a durable event and remember it."""
        await self._send(event)
        conversation_id = event["conversation_id"]
        self.seq_sent[conversation_id] = max(event["seq"], self.seq_sent.get(conversation_id, 0))
        if event["type"] == "message_end":
            self.ended[event["message_id"]] = None
            self.partial_len.pop(event["message_id"], None)
            self.shown_len.pop(event["message_id"], None)
            if len(self.ended) > _ENDED_KEPT:
                self.ended.pop(next(iter(self.ended)))
