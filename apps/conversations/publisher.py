"""The one way out for events: conversation events, queue entries, notes, presence, ratings.

Callers hand the publisher an event; apps/conversations/audiences.py says who receives it.
Group audiences are sent on the channel layer; listener audiences (the agents' queue,
outgoing webhooks) go to the functions that the apps above register when Django starts
(`publisher().listen(...)` in their AppConfig.ready), so this layer imports neither of them.

Inside a transaction an event leaves only after the commit (a rollback takes it back
silently); a conversation's queue entry is rebuilt once per transaction, however many of its
changes name the queue (an agent's reply stores a message and a read mark: one entry).
`broadcasts_deferred` holds committed events for an async caller to send after it answered
its client (`abroadcast_deferred`), then the listeners run off the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar
from uuid import UUID

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings
from django.db import connection, transaction

from apps.core.db import db_async_work
from apps.core.redis import redis_async, redis_key
from apps.core.runtime import runtime

from .audiences import (
    AUDIENCES,
    DURABLE_TYPES,
    GROUP_AUDIENCES,
    LISTENER_AUDIENCES,
    Audience,
    audiences_for,
    group_messages,
)

logger = logging.getLogger(__name__)

R = TypeVar("R")

# A listener gets the events of one batch addressed to its audience; what it returns (the
# queue's `conversation` entries) is published in turn, to group audiences only.
Listener = Callable[[list["Published"]], Iterable["Published"] | None]


@dataclass(frozen=True)
class Published:
    """An event on its way out. `wire` is exactly what a client sees (PROTOCOL.md), or for
    listener-only kinds (`queue_change`, `csat_received`) what the listener needs."""

    conversation_id: str
    customer_id: str | None
    wire: dict[str, Any]
    meta: dict[str, Any] = field(default_factory=dict)  # server-only hints (a token's offset)
    to: frozenset[Audience] | None = None  # set by the publisher only: the table's answer, narrowed

    @property
    def audiences(self) -> frozenset[Audience]:
        return self.to if self.to is not None else audiences_for(self.wire)


# The newest seq of each conversation, kept in Redis so a socket can tell it missed an event
# (a dropped broadcast) with one cheap read instead of a query per check (delivery gap repair).
SEQ_TTL_S = 86400
_SEQ_MAX = """
local cur = tonumber(redis.call('GET', KEYS[1]) or '0')
if tonumber(ARGV[1]) > cur then redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2]) end
return 1
"""


def seq_key(conversation_id: UUID | str) -> str:
    return redis_key("conv", conversation_id, "seq")


# Set by `broadcasts_deferred`: committed events wait here instead of being sent at once.
_deferred: contextvars.ContextVar[list[Published] | None] = contextvars.ContextVar(
    "kefu_deferred_broadcasts", default=None
)


@dataclass(frozen=True, eq=False)
class _OnCommit:
    """The commit hook of one event (a class, so `publish` can find a pending one)."""

    publisher: Publisher
    item: Published
    pending: list[Published] | None

    def __call__(self) -> None:
        if self.pending is not None:
            self.pending.append(self.item)
        else:
            self.publisher.deliver([self.item])


class Publisher:
    """Sends events to their audiences. One per process (`publisher()`); tests may build their
    own with a fake channel layer."""

    def __init__(self, layer: Callable[[], Any] = get_channel_layer) -> None:
        self._layer = layer
        self._listeners: dict[Audience, list[Listener]] = {a: [] for a in LISTENER_AUDIENCES}
        self._background: set[asyncio.Task] = set()

    def listen(self, audience: Audience, listener: Listener) -> None:
        """Register `listener` for a listener audience (once: a second call changes nothing)."""
        if audience not in self._listeners:
            raise ValueError(f"{audience!r} is a channel-layer group, not a listener audience")
        if listener not in self._listeners[audience]:
            self._listeners[audience].append(listener)

    # -- entry points ------------------------------------------------------------------

    def publish(self, item: Published) -> None:
        """Publish on commit of the caller's transaction (outside one it has committed: at once,
        or to `broadcasts_deferred`'s list). Never raises once committed: a lost broadcast
        loses nothing, sockets fill gaps from Postgres."""
        if not connection.in_atomic_block:
            self.publish_committed(item)
            return
        _known(item)
        if Audience.QUEUE in item.audiences and self._queue_pending(item.conversation_id):
            # The pending hook rebuilds the entry after commit, so it shows this change too.
            item = replace(item, to=item.audiences - {Audience.QUEUE})
            if not item.audiences:
                return
        transaction.on_commit(_OnCommit(self, item, _deferred.get()), robust=True)

    def publish_committed(self, item: Published) -> None:
        """`publish` for an event the caller committed already (in autocommit): at once, or to
        `broadcasts_deferred`'s list. Safe on the event loop: it does not touch Django's
        `connection`, which would build a connection object for each task that asks."""
        _known(item)
        _OnCommit(self, item, _deferred.get())()

    async def apublish(self, item: Published) -> None:
        """Send a live event (typing, a token, presence) now, from async code; raises if the
        channel layer fails (the caller decides). Events for listeners go through `publish`."""
        _known(item)
        await self._send(item)

    def deliver(self, batch: list[Published]) -> None:
        """Send committed events now, from sync code: groups, then listeners. Never raises."""
        # A batch for listeners only (a read mark's queue change) needs no trip to the event loop.
        if any(_needs_layer(item) for item in batch):
            try:
                async_to_sync(self.asend)(batch)
            except Exception:
                logger.exception("broadcast of %d events failed", len(batch))
        self.notify(batch)

    async def asend(self, batch: list[Published]) -> None:
        """The channel-layer part of a batch, in order; one failed event does not stop the rest."""
        for item in batch:
            try:
                await self._send(item)
            except Exception:
                logger.exception("broadcast of %s failed", item.wire.get("type"))

    def notify(self, batch: list[Published]) -> None:
        """The listener part of a batch (sync: listeners read and write Postgres). Never raises."""
        for audience, listeners in self._listeners.items():
            addressed = [item for item in batch if audience in item.audiences]
            if not addressed:
                continue
            for listener in listeners:
                produced = self._listener_run(listener, addressed)
                if produced:
                    try:
                        async_to_sync(self.asend)(produced)
                    except Exception:
                        logger.exception("broadcast of %d listener events failed", len(produced))

    def notify_collect(self, batch: list[Published]) -> list[Published]:
        """`notify` that returns the listeners' events instead of sending them (for a caller on
        the event loop: no trip back to it from the listeners' thread). Never raises."""
        produced: list[Published] = []
        for audience, listeners in self._listeners.items():
            addressed = [item for item in batch if audience in item.audiences]
            if addressed:
                for listener in listeners:
                    produced.extend(self._listener_run(listener, addressed))
        return produced

    def after_deferred(self, pending: list[Published]) -> None:
        """Run the listeners of a deferred batch off the event loop (one trip to a database
        thread) and send what they produce from the loop; the caller does not wait."""
        if not pending or not any(self._listeners[a] for a in _listened(pending)):
            return
        task = asyncio.get_running_loop().create_task(self._anotify(list(pending)))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def background_settled(self) -> None:
        """Wait until the deferred listener runs this event loop started have finished (a test
        that ends, or a process that stops, before they write)."""
        loop = asyncio.get_running_loop()
        while mine := [task for task in self._background if task.get_loop() is loop]:
            await asyncio.gather(*mine, return_exceptions=True)

    async def _anotify(self, batch: list[Published]) -> None:
        try:
            await self.asend(await db_async_work(self.notify_collect)(batch))
        except Exception:
            logger.exception("listeners of %d deferred events failed", len(batch))

    @staticmethod
    def _listener_run(listener: Listener, addressed: list[Published]) -> list[Published]:
        try:
            return [_to_groups(item) for item in listener(addressed) or ()]
        except Exception:
            logger.exception("listener %s failed", getattr(listener, "__name__", listener))
            return []

    # -- internals ---------------------------------------------------------------------

    async def _send(self, item: Published) -> None:  # keep in step with _needs_layer
        wire = item.wire
        durable = wire["type"] in DURABLE_TYPES
        messages = group_messages(
            item.audiences, wire=wire, conversation_id=item.conversation_id,
            customer_id=item.customer_id, meta=item.meta,
        )
        layer = self._layer()
        send_many = getattr(layer, "group_send_many", None)  # apps/core/channel_layer.py's
        if send_many is not None and messages and (durable or len(messages) > 1) and _marks_there(layer):
            # The seq mark, then the groups' members read, in one Redis round trip; nothing is
            # delivered before the mark is set (a socket that hears of the event can repair).
            mark = _seq_mark(item) if durable else None
            await send_many(messages, first=mark)
            return
        if durable:  # the mark first: a socket that hears of it can repair
            await redis_async().eval(*_seq_mark_args(item))
        for group, message in messages:  # one group: its local members hear of it at once
            await layer.group_send(group, message)

    @staticmethod
    def _queue_pending(conversation_id: str) -> bool:
        # Django keeps the transaction's hooks here and drops those of a rolled-back savepoint,
        # so a hook found here will run.
        return any(
            isinstance(hook, _OnCommit)
            and hook.item.conversation_id == conversation_id
            and Audience.QUEUE in hook.item.audiences
            for _, hook, *_ in connection.run_on_commit
        )


def _marks_there(layer: Any) -> bool:
    """Whether the channel layer's first Redis is REDIS_URL's, where the seq marks live."""
    hosts = getattr(layer, "hosts", None) or [{}]
    return hosts[0].get("address") == settings.REDIS_URL


def _seq_mark_args(item: Published) -> tuple[Any, ...]:
    """EVAL's arguments that raise the conversation's seq mark to the durable event's seq."""
    return _SEQ_MAX, 1, seq_key(item.conversation_id), item.wire["seq"], SEQ_TTL_S


def _seq_mark(item: Published) -> Callable[[Any], None]:
    """Queue the durable event's seq mark on a Redis pipeline (of REDIS_URL's server)."""
    def queue(pipe: Any) -> None:
        pipe.eval(*_seq_mark_args(item))

    return queue


def _known(item: Published) -> None:
    if item.wire.get("type") not in AUDIENCES:
        raise ValueError(f"{item.wire.get('type')!r} has no audience in apps/conversations/audiences.py")


def _to_groups(item: Published) -> Published:
    # A listener's events reach group audiences only: no listener feeds another.
    return replace(item, to=item.audiences.difference(LISTENER_AUDIENCES))


def publisher() -> Publisher:
    """This process's publisher, kept by the runtime (the listeners registered at start-up live
    on it)."""
    return runtime().get("publisher", Publisher)


@contextlib.contextmanager
def broadcasts_deferred() -> Iterator[list[Published]]:
    """Collect the events committed inside the block instead of sending them.

    For sync code that an async caller runs in a thread (a consumer's `database_sync_to_async`):
    the caller answers its client first, then sends the collected events with
    `abroadcast_deferred`. Without this, each commit waits for its own Redis round trip.
    """
    pending: list[Published] = []
    token = _deferred.set(pending)
    try:
        yield pending
    finally:
        _deferred.reset(token)


def with_broadcasts_deferred(fn: Callable[..., R], /, **kwargs: Any) -> tuple[R, list[Published]]:
    """`fn` run under `broadcasts_deferred`: its result and the events it committed, for an
    async caller that answers its client first, then sends them (`abroadcast_deferred`)."""
    with broadcasts_deferred() as pending:
        result = fn(**kwargs)
    return result, pending


def deferred_with_listeners(fn: Callable[..., R], /, **kwargs: Any) -> tuple[R, list[Published]]:
    """Run `fn` with its committed events held back, then their listeners, on this (database)
    thread; return its result and every event to send from the loop (`abroadcast_collected`).

    For background work that answers nobody first (an answer being stored): one trip to a
    database thread instead of two, and the listeners' CPU spent before the answer's end
    reaches the customer rather than beside the next message they send.
    """
    result, pending = with_broadcasts_deferred(fn, **kwargs)
    return result, pending + publisher().notify_collect(pending)


async def abroadcast_collected(events: list[Published]) -> None:
    """Send what `deferred_with_listeners` returned, in order (its listeners have run)."""
    await publisher().asend(events)


async def abroadcast_deferred(pending: list[Published]) -> None:
    """Send what `broadcasts_deferred` collected, in commit order; the agents' queue and
    webhooks follow off the loop (they need not hold up the caller: an ack, an answer)."""
    await publisher().asend(pending)
    publisher().after_deferred(pending)


def _listened(batch: list[Published]) -> set[Audience]:
    """The listener audiences a batch names."""
    return {a for item in batch for a in item.audiences if a in LISTENER_AUDIENCES}


def _needs_layer(item: Published) -> bool:
    """Whether `_send` has anything to do for this event: a seq mark or a channel-layer group."""
    return item.wire["type"] in DURABLE_TYPES or not item.audiences.isdisjoint(GROUP_AUDIENCES)
