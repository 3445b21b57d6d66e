"""The chat socket's one write that spans two apps: on the event loop's own connection
(`message_receive_on_loop`), else on a database thread (`message_receive_deferred` via
apps.core.db.db_async). Its reads are conversations' selectors (apps/conversations/selectors.py)."""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Awaitable, Callable, Generator
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID, uuid4

from django.db import DEFAULT_DB_ALIAS, connection, transaction
from django.db.models import Model
from django.utils import timezone

from apps.assistant.models import AssistantTurn
from apps.assistant.turn_store import turn_create
from apps.conversations.events import Published, broadcasts_deferred, event_to_wire, publisher
from apps.conversations.language import language_decide, language_detect, supported
from apps.conversations.models import Conversation, ConversationEvent, ConversationState, Message, MessageRole
from apps.conversations.serializers import message_to_wire
from apps.conversations.services import MessageReceipt, message_receive_in, waiting_on_commit
from apps.core.db import db_async
from apps.core.db_loop import LOOP_DB_ERRORS, LoopConnectionsUnavailable, loop_fetchone
from apps.core.ratelimit import limit_windows
from apps.teams.services import routing_read, routing_slug, team_id_route

logger = logging.getLogger(__name__)


def message_receive_deferred(**kwargs: Any) -> tuple[MessageReceipt, list[Published]]:
    """`message_receive_in`, and the answer it makes due, in one transaction (a crash after the
    ack cannot lose the answer). Keeps the committed events for the consumer to broadcast
    after the `ack`: the customer's ack does not wait for the channel layer.

    The common cases (a new message to the customer's conversation, or the first one of a new
    conversation) are one statement, `kefu_chat_message_receive` (as of migration 0003); anything
    rarer, such as a retry or someone else's conversation, takes the Python path."""
    with broadcasts_deferred() as pending:
        row = _drive(_receive_steps(**kwargs))
        if row is None:
            with transaction.atomic():
                receipt = message_receive_in(**kwargs)
                if receipt.answer_due:
                    turn_create(
                        conversation_id=receipt.conversation.pk, trigger_message_id=receipt.message.pk
                    )
        else:
            receipt = row.receipt()
            if receipt.conversation.state == ConversationState.WAITING:  # an agent may have come online
                waiting_on_commit(receipt.conversation.pk)
    return receipt, pending


@dataclass(frozen=True)
class MessageStored:
    """A chat message committed: what its `ack` says, and `settled()`, the receipt and the
    events to broadcast, built once the ack is on its way (the customer waits for the ack only)."""

    conversation_id: UUID
    message_id: UUID
    seq: int
    settled: Callable[[], Awaitable[tuple[MessageReceipt, list[Published]]]]


async def message_receive(**kwargs: Any) -> MessageStored:
    """Store a customer's chat message: `message_receive_on_loop`, else `message_receive_deferred`
    on a database thread. Raises `MessageRateLimited` and the conversation errors."""
    stored = await message_receive_on_loop(**kwargs)
    if stored is not None:
        return stored
    receipt, pending = await db_async(message_receive_deferred)(**kwargs)

    async def settled() -> tuple[MessageReceipt, list[Published]]:
        return receipt, pending

    message = receipt.message
    return MessageStored(receipt.conversation.pk, message.id, message.seq, settled)


async def message_receive_on_loop(**kwargs: Any) -> MessageStored | None:
    """`message_receive_deferred`'s one statement, sent from the event loop on its own
    connection (apps/core/db_loop.py: no thread hop each way). None when the case is the Python
    path's, or the loop's connection failed: the caller runs `message_receive_deferred` in a
    thread, which answers it (a message the failed call did store is found there as a retry)."""
    steps = _receive_steps(**kwargs)
    try:
        request = next(steps)
        while True:
            if isinstance(request, _Routing):
                reply = await db_async(routing_read)(slug=request.slug)
            else:
                reply = await loop_fetchone(_RECEIVE, request)
            request = steps.send(reply)
    except StopIteration as done:
        row = done.value
    except LoopConnectionsUnavailable:  # none free, Postgres just refused one, or switched off
        return None
    except LOOP_DB_ERRORS:
        logger.warning("chat message on the loop's connection failed; storing it from a thread",
                       exc_info=True)
        return None
    if row is None:
        return None

    async def settled() -> tuple[MessageReceipt, list[Published]]:
        with broadcasts_deferred() as pending:
            receipt = row.receipt()
            if receipt.conversation.state == ConversationState.WAITING:  # an agent may have come online
                await db_async(waiting_on_commit)(receipt.conversation.pk)
        return receipt, pending

    return MessageStored(row.conversation_pk, row.message.id, row.seq, settled)


# Columns the SQL function fills in itself (the conversation's id, the message's seq).
_SET_BY_THE_FUNCTION = {
    "message": frozenset({"conversation_id", "seq"}),
    "turn": frozenset({"conversation_id", "trigger_message_id"}),
}

_RECEIVE = "SELECT * FROM kefu_chat_message_receive(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"


class MessageRateLimited(Exception):
    """Over RATELIMIT_MESSAGE_CUSTOMER: nothing was stored; the customer may send again in
    `retry_after_s` seconds."""

    def __init__(self, retry_after_s: int) -> None:
        super().__init__(f"over the customer's message rate; retry in {retry_after_s} s")
        self.retry_after_s = retry_after_s


@dataclass(frozen=True)
class _Routing:
    """A request of `_receive_steps`: the team routing rules for `slug` (`routing_read`)."""

    slug: str | None


def _drive(steps: Generator[Any, Any, _Stored | None]) -> _Stored | None:
    """Run `_receive_steps` on this thread's Django connection."""
    try:
        request = next(steps)
        while True:
            if isinstance(request, _Routing):
                reply = routing_read(slug=request.slug)
            else:
                with connection.cursor() as cursor:
                    cursor.execute(_RECEIVE, request)
                    reply = cursor.fetchone()
            request = steps.send(reply)
    except StopIteration as done:
        return done.value


def _receive_steps(
    *,
    customer_id: UUID | str,
    client_msg_id: UUID,
    text: str,
    conversation_id: UUID | None = None,
    new_conversation_id: UUID | None = None,
    team: str | None = None,
    language: str = "",
    language_fixed: bool = False,
) -> Generator[list[Any] | _Routing, Any, _Stored | None]:
    """The message stored by the SQL function, as the steps of a generator: it yields the
    function's arguments (or `_Routing`) and is sent the row (or the rules) back, so one flow
    runs on a thread (`_drive`) or on the loop. One call in autocommit, two more for a new
    conversation while team routing rules are enabled (they are matched here). Returns the
    stored row (`_Stored`), or None
    when the function leaves the case to the Python path, having written nothing; raises
    `MessageRateLimited` when the customer is over RATELIMIT_MESSAGE_CUSTOMER (nothing written)."""
    detected = language_detect(text) or ""
    page = supported(language)
    message = Message(
        id=uuid4(), role=MessageRole.CUSTOMER, text=text, client_msg_id=client_msg_id, conversation_id=None,
        created_at=timezone.now(),
    )
    payload = {"message": message_to_wire(message)}  # the `message` event's, seq aside
    # What every call sends alike (a new conversation may take up to three calls).
    message_row = _row_json(Message, {
        "id": message.id, "role": message.role, "text": text, "client_msg_id": client_msg_id,
        "created_at": message.created_at,
    }, skip=_SET_BY_THE_FUNCTION["message"])
    turn_row = _row_json(AssistantTurn, {}, skip=_SET_BY_THE_FUNCTION["turn"])
    forced = page if language_fixed and page else ""
    limit_amounts, limit_windows_s = limit_windows("message_customer")

    def call(new: Conversation | None, routed: bool) -> list[Any]:
        return [
            customer_id, client_msg_id, conversation_id, message_row, json.dumps(payload),
            forced, detected, page, None if new is None else _row_json(Conversation, new),
            routing_slug(team), routed, turn_row, limit_amounts, limit_windows_s,
        ]

    # The widget names its conversation in every message after the first: a message naming
    # none most likely starts one, so the new one's row goes with it (asked again if not).
    new = None if conversation_id is not None else _conversation_new(
        customer_id, new_conversation_id, text, page, language_fixed, detected
    )
    result, *stored = yield call(new, routed=False)
    if result == "new":
        new = _conversation_new(customer_id, new_conversation_id, text, page, language_fixed, detected)
        result, *stored = yield call(new, routed=False)
    if result == "route":  # routing rules are enabled: matched here (apps/teams), then stored
        new["team_id"] = team_id_route(routing=(yield _Routing(team)), text=text)
        result, *stored = yield call(new, routed=True)
    if result == "limited":
        raise MessageRateLimited(stored[-1])
    if result != "stored":
        return None
    conversation_pk, state, decided, seq, event_pk, event_at, _ = stored
    return _Stored(customer_id, message, payload, conversation_pk, state, decided, seq, event_pk, event_at)


@dataclass(frozen=True)
class _Stored:
    """The function's `stored` row with the message it stored: enough for the ack; `receipt`
    builds the rest."""

    customer_id: UUID | str
    message: Message
    payload: dict[str, Any]
    conversation_pk: UUID
    state: str
    language: str
    seq: int
    event_pk: int
    event_at: datetime

    def receipt(self) -> MessageReceipt:
        """The receipt, and the `message` event published (committed already, in autocommit:
        to the caller's `broadcasts_deferred`)."""
        conversation = Conversation(id=self.conversation_pk, customer_id=self.customer_id, state=self.state,
                                    language=self.language, last_seq=self.seq)
        message = self.message
        message.conversation, message.seq = conversation, self.seq
        for row in (conversation, message):  # DEFAULT_DB_ALIAS, not `connection` (see publish_committed)
            row._state.adding, row._state.db = False, DEFAULT_DB_ALIAS
        event = ConversationEvent(
            id=self.event_pk, conversation_id=self.conversation_pk, seq=self.seq, type="message",
            payload=self.payload, created_at=self.event_at,
        )
        publisher().publish_committed(
            Published(str(self.conversation_pk), str(self.customer_id), event_to_wire(event))
        )
        return MessageReceipt(message, conversation, created=True,
                              answer_due=self.state == ConversationState.BOT)


def _conversation_new(
    customer_id: UUID | str, conversation_id: UUID | None, text: str, page: str, fixed: bool, detected: str
) -> dict[str, Any]:
    """A new conversation's fields as `message_receive_in` sets them, its language from this
    first message; its team is the function's to fill in, or the routing rules' (`route`)."""
    return {
        "id": conversation_id or uuid4(), "customer_id": customer_id,
        "language": language_decide(current="", text=text, page=page, fixed=fixed, detected=detected),
    }


def _row_json(model: type[Model], values: dict[str, Any], *, skip: frozenset[str] = frozenset()) -> str:
    """A new row of `model` as Model.save() would insert it, as JSON for `jsonb_populate_record`:
    `values` by attribute name, each other column its field's default (or now, for auto_now).
    No model instance: building one (and its init signals) was most of a chat message's Python."""
    return _RowTemplate.of(model, skip).json(values)


class _RowTemplate:
    """A model's insert row without the columns in `skip`: the constant defaults worked out
    once per process; callable defaults, auto_now stamps and `values` filled in per row."""

    def __init__(self, model: type[Model], skip: frozenset[str]) -> None:
        self.constant: dict[str, Any] = {}
        self.made: list[tuple[str, Callable[[], Any]]] = []  # callable defaults (uuid4, list, now)
        self.stamped: list[str] = []  # auto_now / auto_now_add
        self.column_of: dict[str, str] = {}
        for field in model._meta.concrete_fields:
            if field.column in skip:
                continue
            self.column_of[field.attname] = field.column
            if getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False):
                self.stamped.append(field.column)
            elif field.has_default() and callable(field.default):
                self.made.append((field.column, field.default))
            else:
                self.constant[field.column] = _json_value(field.get_default())

    @classmethod
    @functools.cache
    def of(cls, model: type[Model], skip: frozenset[str]) -> _RowTemplate:
        return cls(model, skip)

    def json(self, values: dict[str, Any]) -> str:
        row = self.constant.copy()
        if self.stamped:
            now = timezone.now().isoformat()
            for column in self.stamped:
                row[column] = now
        given = {self.column_of[attname]: _json_value(value) for attname, value in values.items()}
        for column, make in self.made:
            if column not in given:
                row[column] = _json_value(make())
        row.update(given)
        return json.dumps(row)


def _json_value(value: Any) -> Any:
    """UUIDs and datetimes as Postgres reads them (DjangoJSONEncoder would cut microseconds)."""
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    return value
