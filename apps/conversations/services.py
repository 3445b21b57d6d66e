"""Changing conversations. Every state change that the customer or an agent must see emits
its durable event through apps/conversations/events.py in the same transaction. Row locks
follow the one order in apps/conversations/locking.py (customer, then conversation)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any
from uuid import UUID, uuid4

from django.db import connection, transaction
from django.utils import timezone
from django.utils.translation import gettext, gettext_noop

from apps.teams.services import ROUTING_SQL, routing_read, routing_slug, team_id_route

from .errors import ConversationConflict, ConversationError, ConversationForbidden, ConversationNotFound
from .events import event_emit
from .language import language_decide, language_detect, spoken
from .locking import customer_lock
from .models import Conversation, ConversationState, Message, MessageFeedback, MessageRole
from .publisher import Published, publisher
from .selectors import conversation_open_for_customer
from .serializers import feedback_to_wire, message_to_wire

logger = logging.getLogger(__name__)

CSAT_QUESTION = gettext_noop("How did we do? Rate this conversation from 1 to 5.")
FEEDBACK_COMMENT_MAX = 1000  # PROTOCOL.md §2 `feedback.comment`


@dataclass(frozen=True)
class MessageReceipt:
    """What `message_receive` did: the stored message and whether an answer is due."""

    message: Message
    conversation: Conversation
    created: bool  # False: a retry of a message stored before (same client_msg_id)
    answer_due: bool  # the conversation is the assistant's and this message is new


@transaction.atomic(savepoint=False)  # a failed insert fails the caller's transaction anyway
def message_create(
    *,
    conversation: Conversation,
    role: str,
    text: str,
    citations: list[dict[str, Any]] | None = None,
    author_id: int | None = None,
    client_msg_id: UUID | None = None,
    message_id: UUID | None = None,
    stopped: bool = False,
    created_at: datetime | None = None,
    outcome: str = "",
    suggestions: list[dict[str, Any]] | None = None,
) -> Message:
    """Store a message and emit its durable `message` event; `message.seq` is that event's seq.
    An assistant answer also has its `outcome` and, for a clarify, its `suggestions`."""
    message = Message(
        id=message_id or uuid4(),
        conversation=conversation,
        role=role,
        text=text,
        citations=citations or [],
        author_id=author_id,
        client_msg_id=client_msg_id,
        stopped=stopped,
        outcome=outcome,
        suggestions=suggestions or [],
        created_at=created_at or timezone.now(),
    )
    # The message is inserted by the event's own statement, with its seq (one round trip).
    event_emit(
        conversation=conversation, type="message", payload={"message": message_to_wire(message)},
        row=message,
    )
    return message


@transaction.atomic
def message_receive(**kwargs: Any) -> MessageReceipt:
    """`message_receive_in` in a transaction of its own (a savepoint when nested)."""
    return message_receive_in(**kwargs)


def message_receive_in(
    *,
    customer_id: UUID | str,
    client_msg_id: UUID,
    text: str,
    conversation_id: UUID | None = None,
    new_conversation_id: UUID | None = None,
    team: str | None = None,
    language: str = "",
    language_fixed: bool = False,
) -> MessageReceipt:
    """A customer's message, idempotent on `client_msg_id` across all their conversations.

    Without `conversation_id` (or when it names a closed conversation) the message goes to the
    customer's open conversation, or to a new one with id `new_conversation_id`. The caller holds
    the transaction: the chat path saves a savepoint's two round trips (`message_receive` opens one).
    """
    if not connection.in_atomic_block:
        raise RuntimeError("message_receive_in needs the caller's transaction; use message_receive")
    detected = language_detect(text)  # before the customer lock: pure CPU, no need to hold it
    # One writer per customer at a time: a retry racing its original finds the stored copy,
    # and two first messages from two tabs land in one new conversation, not two.
    if not customer_lock(customer_id=customer_id):
        raise ConversationNotFound("This customer no longer exists; start a new session.")
    existing_id, target, routing = _receive_lookup(customer_id, client_msg_id, conversation_id, team)
    if existing_id is not None:
        # A retry is acked as the original, whatever conversation it names (that one may have
        # closed meanwhile, or the client may have lost track of it).
        existing = Message.objects.select_related("conversation").get(pk=existing_id)
        return MessageReceipt(existing, existing.conversation, created=False, answer_due=False)

    if conversation_id is not None:
        if target is None:
            raise ConversationNotFound(
                "No conversation has this id; send the message without conversation_id."
            )
        if str(target.customer_id) != str(customer_id):
            raise ConversationForbidden("This conversation belongs to someone else.")
    if target is not None and target.state == ConversationState.CLOSED:
        target = conversation_open_for_customer(customer_id=customer_id)  # or a new one, below
    if target is None:
        # A new conversation's team: the widget's `team` slug, else the first rule its first
        # message matches (apps/teams/services.py); neither routes nowhere, never an error.
        team_id = team_id_route(routing=routing or routing_read(slug=team), text=text)
        first_language = language_decide(
            current="", text=text, page=language, fixed=language_fixed, detected=detected
        )
        target = Conversation.objects.create(
            id=new_conversation_id or uuid4(), customer_id=customer_id, team_id=team_id,
            language=first_language,
        )
    conversation = target
    message = message_create(
        conversation=conversation, role=MessageRole.CUSTOMER, text=text, client_msg_id=client_msg_id
    )
    # The customer's language: from this message, else kept, else the host page's (language.py).
    decided = language_decide(
        current=conversation.language, text=text, page=language, fixed=language_fixed, detected=detected
    )
    if decided != conversation.language:
        Conversation.objects.filter(pk=conversation.pk).update(language=decided)
        conversation.language = decided
    if conversation.state == ConversationState.WAITING:  # an agent may have come online since
        waiting_on_commit(conversation.pk)
    return MessageReceipt(
        message, conversation, created=True, answer_due=conversation.state == ConversationState.BOT
    )


# The idempotency lookup, the target conversation and (when there is none) the team routing of
# a new one in one round trip: this is every chat message's path, and each ORM query costs about
# a millisecond here (bench/ws_sessions.py).
# It runs after customer_lock, as its own statement, so it sees what a racing writer committed.
# A message naming its conversation (the widget's every message after the first) asks without
# the routing subqueries, which Postgres would plan each time though it runs them only for a new
# conversation; if that conversation has closed meanwhile, the new one's routing is read apart.
_RECEIVE_LOOKUP = """
SELECT
  (SELECT m.id FROM conversations_message m
     JOIN conversations_conversation mc ON mc.id = m.conversation_id
    WHERE m.client_msg_id = %(client_msg_id)s AND mc.customer_id = %(customer_id)s LIMIT 1),
  t.id, t.customer_id, t.state, t.language, t.last_seq,
  {routing}
FROM (SELECT 1) AS one
LEFT JOIN LATERAL (
  SELECT id, customer_id, state, language, last_seq FROM conversations_conversation
   WHERE {target}
   ORDER BY created_at DESC LIMIT 1
) AS t ON true
"""
_LOOKUP_NAMED = _RECEIVE_LOOKUP.format(routing="NULL", target="id = %(conversation_id)s")
_LOOKUP_OPEN = _RECEIVE_LOOKUP.format(
    routing=f"CASE WHEN t.id IS NULL THEN {ROUTING_SQL} END",
    target="customer_id = %(customer_id)s AND state <> 'closed'",
)


def _receive_lookup(
    customer_id: UUID | str, client_msg_id: UUID, conversation_id: UUID | None, team: str | None
) -> tuple[UUID | None, Conversation | None, dict[str, Any] | None]:
    """(id of a message stored with this client_msg_id, the conversation named by
    `conversation_id` or else the customer's newest open one loaded with the fields needed,
    and when there is none the team routing a new one needs: apps/teams ROUTING_SQL)."""
    params = {"customer_id": customer_id, "client_msg_id": client_msg_id,
              "conversation_id": conversation_id, "team_slug": routing_slug(team)}
    with connection.cursor() as cursor:
        cursor.execute(_LOOKUP_OPEN if conversation_id is None else _LOOKUP_NAMED, params)
        existing_id, *conversation, routing = cursor.fetchone()
    if conversation[0] is None:
        return existing_id, None, routing
    # from_db takes a subset of the fields' values in the model's field order (the SELECT's).
    fields = ["id", "customer_id", "state", "language", "last_seq"]
    return existing_id, Conversation.from_db(connection.alias, fields, conversation), None


@transaction.atomic
def conversation_request_human(*, conversation_id: UUID | str) -> Conversation:
    """Hand a conversation from the assistant to the agents' queue (`waiting` + `handoff`).

    Asking again while waiting for or talking to an agent changes nothing and emits nothing.
    """
    conversation = Conversation.objects.select_for_update(no_key=True).get(pk=conversation_id)
    if conversation.state == ConversationState.CLOSED:
        raise ConversationConflict("This conversation is closed; send a message to start a new one.")
    if conversation.state == ConversationState.BOT:
        conversation.state = ConversationState.WAITING
        conversation.save(update_fields=["state", "updated_at"])
        event_emit(conversation=conversation, type="handoff", payload={"state": "waiting", "agent": None})
        _state_changed(conversation)
        waiting_on_commit(conversation.pk)
    return conversation


@transaction.atomic
def conversation_close(*, conversation_id: UUID | str, question: str = CSAT_QUESTION) -> Conversation:
    """Close a conversation and ask the customer for a rating (`csat_request`)."""
    conversation = Conversation.objects.select_for_update(no_key=True).get(pk=conversation_id)
    if conversation.state != ConversationState.CLOSED:
        conversation.state = ConversationState.CLOSED
        conversation.closed_at = timezone.now()
        conversation.save(update_fields=["state", "closed_at", "updated_at"])
        with spoken(conversation.language):  # in the customer's language (a custom question as is)
            question = gettext(question)
        event_emit(conversation=conversation, type="csat_request", payload={"question": question})
        _state_changed(conversation)
    return conversation


@transaction.atomic
def conversation_rate(*, conversation_id: UUID | str, score: int, comment: str = "") -> Conversation:
    """Record the customer's answer to a `csat_request`; a later answer replaces an earlier one."""
    conversation = Conversation.objects.select_for_update(no_key=True).get(pk=conversation_id)
    if conversation.state != ConversationState.CLOSED:
        raise ConversationConflict(
            "Ratings are asked for when a conversation closes; this one is still open."
        )
    conversation.csat_score = score
    conversation.csat_comment = comment
    conversation.save(update_fields=["csat_score", "csat_comment", "updated_at"])
    _csat_published(conversation)  # on commit
    return conversation


def _csat_published(conversation: Conversation) -> None:
    """A rating changes no customer event, but the agents' queue and subscribers hear of it."""
    wire = {
        "type": "csat_received",
        "conversation_id": str(conversation.pk),
        "customer_id": str(conversation.customer_id),
        "score": conversation.csat_score,
        "comment": conversation.csat_comment,
    }
    publisher().publish(Published(str(conversation.pk), str(conversation.customer_id), wire))


@transaction.atomic
def feedback_record(
    *,
    customer_id: UUID | str,
    conversation_id: UUID | str,
    message_id: UUID | str,
    helpful: bool,
    comment: str = "",
) -> MessageFeedback:
    """The customer's thumbs up/down on one of the assistant's answers in their conversation;
    sending it again replaces it. Not a customer event (no seq): the agents who have the
    conversation open see it live, and subscribers get `feedback.received` (on commit)."""
    if len(comment) > FEEDBACK_COMMENT_MAX:
        raise ConversationError(f"A feedback comment is limited to {FEEDBACK_COMMENT_MAX} characters.")
    message = (
        Message.objects.select_related("conversation")
        .only("id", "role", "conversation__id", "conversation__customer_id")
        .filter(pk=message_id, conversation_id=conversation_id)
        .first()
    )
    if message is None:
        raise ConversationNotFound("This conversation has no message with this id.")
    if str(message.conversation.customer_id) != str(customer_id):
        raise ConversationForbidden("This conversation belongs to someone else.")
    if message.role != MessageRole.ASSISTANT:
        raise ConversationError("Feedback is for the assistant's answers; this message is not one.")
    # One statement, race-free: a second verdict (or two at once) updates the one row.
    [feedback] = MessageFeedback.objects.bulk_create(
        [MessageFeedback(message_id=message.pk, helpful=helpful, comment=comment)],
        update_conflicts=True, unique_fields=["message"], update_fields=["helpful", "comment", "updated_at"],
    )
    wire = feedback_to_wire(feedback, conversation_id=str(message.conversation_id))
    publisher().publish(Published(str(message.conversation_id), str(customer_id), wire))
    return feedback


# What must commit with a state change (the SLA clocks start at `waiting` and stop at `closed`):
# apps above register it when Django starts (apps/sla/apps.py). Called inside the transaction,
# so it rolls back with the change; an exception fails the change.
StateHandler = Callable[..., object]
_state_handlers: list[StateHandler] = []


def conversation_state_handler_register(handler: StateHandler) -> None:
    """`handler(conversation=...)` runs in the transaction of each state change made here."""
    if handler not in _state_handlers:
        _state_handlers.append(handler)


def _state_changed(conversation: Conversation) -> None:
    for handler in _state_handlers:
        handler(conversation=conversation)


# What happens once a conversation waits for a person: the console registers its automatic
# assignment here when Django starts (apps/console/apps.py), since this layer may not import it.
# Called explicitly by the services that leave a conversation waiting, on commit; never by
# broadcasting an event.
WaitingHandler = Callable[..., object]
_waiting_handlers: list[WaitingHandler] = []


def conversation_waiting_handler_register(handler: WaitingHandler) -> None:
    """`handler(conversation_id=...)` runs after the commit of each change that leaves a
    conversation waiting for an agent (a request for a person, a message while waiting)."""
    if handler not in _waiting_handlers:
        _waiting_handlers.append(handler)


def waiting_on_commit(conversation_id: UUID | str) -> None:
    for handler in _waiting_handlers:
        transaction.on_commit(partial(_waiting_run, handler, conversation_id), robust=True)


def _waiting_run(handler: WaitingHandler, conversation_id: UUID | str) -> None:
    try:
        handler(conversation_id=conversation_id)
    except Exception:
        logger.exception("waiting handler %s failed for conversation %s", handler, conversation_id)
