"""Durable assistant turns in Postgres: create, stop, claim, renew, finish, hand back.

Every function here is sync (run it through apps.core.db.db_async from async code). The turn
runner (apps/assistant/turns.py) is the only caller of the claim/renew/finish functions;
anything that makes an answer due or stops answers (the chat socket, the console's claim,
a tool confirmation) calls `turn_create` / `turns_stop` inside its own transaction.
Row locks follow apps/conversations/locking.py: a turn's conversation before the turn.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from django.db import connection, transaction
from django.utils import timezone

from apps.conversations.events import Published, deferred_with_listeners, event_emit
from apps.conversations.locking import conversation_lock_for
from apps.conversations.models import ConversationState, Message, MessageRole
from apps.conversations.selectors import message_history
from apps.conversations.services import message_create
from apps.core.ratelimit import limit_windows
from apps.customers.models import Customer
from apps.customers.services import customer_answer_admit

from .models import AssistantTurn, TurnState
from .providers import Turn

# A runner renews its leases every LEASE_RENEW_S; a lease not renewed for LEASE_S lapses and
# another runner takes the turn over (PROTOCOL.md §2: within 30 s of the process dying).
LEASE_S = 10
# A due turn nobody kicked (made by a worker, or its kick was lost) is swept up after this.
SWEEP_GRACE_S = 2
HISTORY_LIMIT = 20


@dataclass(frozen=True)
class ClaimedTurn:
    id: str
    conversation_id: str
    message_id: str
    stop_requested: bool
    attempts: int  # 1 on the first run, more after a takeover
    # What its provider answers (None: the assistant stays silent, see `turn_context`), without
    # tools, and the conversation's customer (whom the tools act for), read with the claim.
    turn: Turn | None = None
    customer: Customer | None = None
    # Over the customer's answers per hour (RATELIMIT_ANSWER_CUSTOMER_HOUR): no provider call.
    over_limit: bool = False


def turn_create(
    *, conversation_id: UUID | str, trigger_message_id: UUID | str | None = None,
    tool_call_id: UUID | str | None = None,
) -> AssistantTurn:
    """Make an answer due (in the caller's transaction); a runner picks it up after commit."""
    return AssistantTurn.objects.create(
        conversation_id=conversation_id, trigger_message_id=trigger_message_id, tool_call_id=tool_call_id
    )


# The conversation's lock, then its turns' (apps/conversations/locking.py), in one statement:
# the materialized CTE runs before the UPDATE scans a turn. Already held by a caller that
# locked the conversation (the console's claim); taken here for the customer's `stop`.
_STOP = """
WITH c AS MATERIALIZED (
  SELECT id FROM conversations_conversation WHERE id = %(conversation_id)s FOR NO KEY UPDATE
)
UPDATE assistant_assistantturn SET stop_requested = true
 WHERE conversation_id = (SELECT id FROM c) AND state <> 'done' RETURNING id
"""


def turns_stop(*, conversation_id: UUID | str) -> list[str]:
    """Ask every answer due or being generated in the conversation to stop (in the caller's
    transaction). Returns their ids; the caller tells the runners after commit
    (`runner.turns_stop_signal`), though a runner also sees the flag when it renews its lease."""
    with connection.cursor() as cursor:
        cursor.execute(_STOP, {"conversation_id": conversation_id})
        return [str(row[0]) for row in cursor.fetchall()]


# The oldest open turn of a conversation, and only that one, can be claimed: answers come in
# order, one at a time per conversation. SKIP LOCKED lets concurrent runners pass each other.
# The same statement reads what the answer needs (`turn_context`'s reads and the customer):
# one round trip instead of five, which hundreds of answers starting together feel.
_CLAIM = """
WITH claimed AS (
UPDATE assistant_assistantturn t
   SET state = 'running', owner = %(owner)s, lease_until = now() + make_interval(secs => %(lease)s),
       attempts = t.attempts + 1, started_at = coalesce(t.started_at, now())
 WHERE t.id = (
   SELECT c.id FROM assistant_assistantturn c
    WHERE c.state <> 'done'
      AND (c.state = 'due' OR c.lease_until < now())
      AND (%(conversation_id)s::uuid IS NULL OR c.conversation_id = %(conversation_id)s::uuid)
      -- a sweep leaves a fresh turn to the socket that made it (it kicks once it follows the
      -- conversation, so the customer gets every token)
      AND (%(conversation_id)s::uuid IS NOT NULL OR c.state <> 'due'
           OR c.created_at < now() - make_interval(secs => %(grace)s))
      AND NOT EXISTS (SELECT 1 FROM assistant_assistantturn o
                       WHERE o.conversation_id = c.conversation_id AND o.state <> 'done'
                         AND (o.created_at, o.id) < (c.created_at, c.id))
    ORDER BY c.created_at
    LIMIT 1
    FOR UPDATE SKIP LOCKED)
RETURNING t.id, t.conversation_id, t.message_id, t.stop_requested, t.attempts, t.trigger_message_id,
          t.tool_call_id
)
SELECT cl.id, cl.conversation_id, cl.message_id, cl.stop_requested, cl.attempts, cl.tool_call_id,
       c.state, c.language,
       -- message_history's window: the newest %(history)s, oldest first ([id, role, text])
       (SELECT coalesce(json_agg(json_build_array(h.id, h.role, h.text) ORDER BY h.n DESC), '[]')
          FROM (SELECT m.id, m.role, m.text, row_number() OVER (ORDER BY m.created_at DESC) AS n
                  FROM conversations_message m WHERE m.conversation_id = cl.conversation_id
                 ORDER BY m.created_at DESC LIMIT %(history)s) h),
       cl.trigger_message_id,
       (SELECT m.text FROM conversations_message m WHERE m.id = cl.trigger_message_id),
       {customer}
  FROM claimed cl
  JOIN conversations_conversation c ON c.id = cl.conversation_id
  JOIN customers_customer cu ON cu.id = c.customer_id
""".format(customer=", ".join(f'cu."{f.column}"' for f in Customer._meta.concrete_fields))


_CUSTOMER_FIELDS = [f.attname for f in Customer._meta.concrete_fields]  # _CLAIM's order


def turn_claim(*, owner: str, conversation_id: UUID | str | None = None) -> ClaimedTurn | None:
    """Take the next claimable turn (of one conversation, or of any), or None; with what its
    provider answers (no tools yet) and the customer."""
    with connection.cursor() as cursor:
        params = {"owner": owner, "lease": LEASE_S, "conversation_id": conversation_id,
                  "grace": SWEEP_GRACE_S, "history": HISTORY_LIMIT}
        cursor.execute(_CLAIM, params)
        row = cursor.fetchone()
    if row is None:
        return None
    (turn_id, conversation_id, message_id, stop_requested, attempts, tool_call_id, state, language,
     history, trigger_message_id, trigger_text, *customer_row) = row
    customer = Customer.from_db(connection.alias, _CUSTOMER_FIELDS, customer_row)
    turn = None
    if state == ConversationState.BOT:
        question, window = _question_and_history(
            [(UUID(pk), role, text) for pk, role, text in history], trigger_message_id,
            lambda: trigger_text or "",
        )
        turn = Turn(
            conversation_id=str(conversation_id), question=question, history=window,
            customer_id=str(customer.pk), tool_call_id=str(tool_call_id) if tool_call_id else None,
            language=language,
        )
    # The cost guard, on the same trip to the database thread: a turn's first run counts (a
    # takeover after a crash does not count twice, a stopped turn calls no model).
    over_limit = False
    if turn is not None and attempts == 1 and not stop_requested:
        amounts, windows_s = limit_windows("answer_customer_hour")
        over_limit = not customer_answer_admit(customer_id=customer.pk, amounts=amounts, windows_s=windows_s)
    return ClaimedTurn(str(turn_id), str(conversation_id), str(message_id), stop_requested, attempts,
                       turn=turn, customer=customer, over_limit=over_limit)


def turns_renew(*, owner: str, turn_ids: list[str]) -> dict[str, bool]:
    """Extend the leases this runner still holds: {turn id: stop requested}. A turn missing
    from the answer was lost (taken over after a stall): its runner must drop it."""
    if not turn_ids:
        return {}
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE assistant_assistantturn SET lease_until = now() + make_interval(secs => %s) "
            "WHERE id = ANY(%s::uuid[]) AND owner = %s AND state = 'running' RETURNING id, stop_requested",
            [LEASE_S, turn_ids, owner],
        )
        return {str(pk): stop for pk, stop in cursor.fetchall()}


def turns_release(*, owner: str) -> int:
    """Hand this runner's turns back (graceful shutdown): due again, at once, for any runner."""
    return AssistantTurn.objects.filter(owner=owner, state=TurnState.RUNNING).update(
        state=TurnState.DUE, owner="", lease_until=None
    )


def turn_context(*, turn_id: str) -> Turn | None:
    """What the provider answers, or None when the assistant should stay silent (the
    conversation is with an agent or closed, or a newer answer already covers it)."""
    turn = AssistantTurn.objects.select_related("conversation").get(pk=turn_id)
    conversation = turn.conversation
    if conversation.state != ConversationState.BOT:
        return None
    history = message_history(conversation_id=conversation.pk, limit=HISTORY_LIMIT)
    question, window = _question_and_history(
        [(m.pk, m.role, m.text) for m in history], turn.trigger_message_id,
        lambda: Message.objects.get(pk=turn.trigger_message_id).text,
    )
    return Turn(
        conversation_id=str(conversation.pk),
        question=question,
        history=window,
        customer_id=str(conversation.customer_id),
        tool_call_id=str(turn.tool_call_id) if turn.tool_call_id else None,
        language=conversation.language,
    )


def _question_and_history(
    history: list[tuple[UUID, str, str]], trigger_message_id: UUID | None, trigger_text: Callable[[], str]
) -> tuple[str, list[dict[str, str]]]:
    """The question a turn answers and the messages before it, from the conversation's newest
    messages ((id, role, text), oldest first): the trigger message's text and what precedes it,
    or, with no trigger, the last customer message's text and the whole window."""
    if trigger_message_id is not None:
        cut = next((i for i, (pk, _, _) in enumerate(history) if pk == trigger_message_id), None)
        if cut is None:  # older than the window: answer it with the window as context
            question = trigger_text()
        else:
            question, history = history[cut][2], history[:cut]
    else:
        customer = [text for _, role, text in history if role == MessageRole.CUSTOMER]
        question = customer[-1] if customer else ""
    return question, [{"role": role, "text": text} for _, role, text in history]


# The turn's end in one statement (its row lock, as select_for_update took): through the ORM
# (read, then save) it was half of a finish's 3 ms of CPU while 200 answers ended together.
_FINISH = f"""
    UPDATE {AssistantTurn._meta.db_table} SET state = %s, finished_at = %s
     WHERE id = %s AND state = %s AND owner = %s
    RETURNING message_id, created_at"""


@transaction.atomic
def turn_finish(
    *,
    turn_id: str,
    owner: str,
    text: str,
    citations: list[dict[str, Any]],
    stopped: bool,
    answered: bool = True,
    outcome: str = "answered",
    suggestions: list[dict[str, Any]] | None = None,
) -> Message | None:
    """End a turn: the assistant `message` (seq n), then `message_end` (seq n + 1), once.

    Does nothing when the turn is no longer this runner's (another took it over, or it is done),
    so a stalled runner that wakes up late cannot store a second answer. With `answered` False
    (the assistant must stay silent and nothing was streamed) the turn ends without events.
    The message is dated when the turn was created, so a customer message sent while it
    streamed is newer than it. `outcome` is PROTOCOL.md §2's; `suggestions` are kept for a
    `clarify` only.
    """
    # The conversation before the turn (apps/conversations/locking.py): an agent's claim holds
    # the conversation while it stops this turn, and the seq bumps below need it anyway.
    conversation = conversation_lock_for(model=AssistantTurn, pk=turn_id)
    if conversation is None:
        return None
    with connection.cursor() as cursor:
        cursor.execute(_FINISH, [TurnState.DONE, timezone.now(), turn_id, TurnState.RUNNING, owner])
        row = cursor.fetchone()
    if row is None:  # not running, or not ours
        return None
    message_id, created_at = row
    if not answered:
        return None
    suggestions = list(suggestions or [])[:3] if outcome == "clarify" else []
    message = message_create(
        conversation=conversation,
        role=MessageRole.ASSISTANT,
        text=text,
        citations=citations,
        message_id=message_id,
        stopped=stopped,
        created_at=created_at,
        outcome=outcome,
        suggestions=suggestions,
    )
    event_emit(
        conversation=conversation,
        type="message_end",
        payload={
            "message_id": str(message.id), "text": text, "citations": citations, "stopped": stopped,
            "outcome": outcome, "suggestions": suggestions,
        },
    )
    return message


def turn_finish_deferred(**kwargs: Any) -> tuple[Message | None, list[Published]]:
    """`turn_finish`, then the listeners of its events (the agents' queue, webhooks), on this
    database thread; the events are sent by the runner from its event loop
    (`abroadcast_collected`). One trip to a database thread, instead of that thread also
    waiting for the loop once per event (and per queue entry), and the listeners' work done
    before `message_end` reaches the customer, not beside the next message they send."""
    return deferred_with_listeners(turn_finish, **kwargs)
