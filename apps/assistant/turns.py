"""The turn runner: generates due answers (apps/assistant/models.py) in this process.

One runner per event loop. It claims turns from Postgres (the conversation a socket just
wrote to at once, and every SWEEP_S any turn nobody holds: new ones made elsewhere, or ones
whose runner died and whose lease lapsed), each claim after the acks pending on its loop went
out (apps/core/acks_first.py), streams each answer to the conversation's group, renews its
leases, and stores the answer once (`turn_finish` checks the lease is still ours).
Storing an answer and running its listeners (queue, webhooks) is one trip to a database
thread: the events come back to the loop and are sent from there (`turn_finish_deferred`),
shielded from a cancellation that arrives meanwhile, so a stored answer is always broadcast.

Public API (async, from the server's event loop):
- `turn_kick(conversation_id=)`: an answer may be due in this conversation; run it here now.
- `turn_stop(conversation_id=)`: stop every answer due or being generated in it, in any process.
- `turns_stop_signal(turn_ids)`: after committing `turn_store.turns_stop` yourself (the console's
  claim), make the runners notice within STOP_POLL_S.
- `turn_partial(conversation_id=)`: (message_id, text so far) of the answer being generated.
- `runner_start()` / `runner_handover()`: ASGI lifespan start and graceful shutdown.
- `turns_settle()`: stop and wait for this loop's turns (tests).

One answer, as the conversation's sockets see it:
    token* (live, `message_id`, coalesced deltas)   while generating; text so far kept in Redis
    message (durable, seq n, role assistant, final text, citations)
    message_end (durable, seq n + 1, `message_id`, final text, citations, stopped, outcome,
                 suggestions)
A runner that takes over a turn first sends a live `partial` with empty text (the answer
restarts) and then streams it again under the same message id.

The outcome (PROTOCOL.md §2, stored on the Message too): the last `AnswerChunk.outcome` the
provider yielded, with its `suggestions` (kept for `clarify` only); `stopped` when the customer
stopped the answer; `declined` for the runner's own apology or over-limit text. A provider that
names none gets `answered` when its answer cites something and `declined` when it does not.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import socket
import time
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID, uuid4

from django.conf import settings

from apps.conversations.events import abroadcast_collected, aevent_broadcast
from apps.core import metrics
from apps.core.acks_first import ACKS_FIRST_MAX_S, acks_settled
from apps.core.db import db_async, db_async_work
from apps.core.logging import log_context
from apps.core.runtime import runtime

from . import live_state, turn_store
from .phrases import PHRASES, phrase
from .providers import ProviderUnavailable, Turn, provider_get
from .providers.base import OUTCOMES

logger = logging.getLogger(__name__)

STOP_POLL_S = 0.2
SWEEP_S = 1.0
LEASE_RENEW_S = 3.0
FINISH_ATTEMPTS = 5
APOLOGY = PHRASES["apology"]  # said in the customer's language (phrase("apology", ...))
OVER_LIMIT = PHRASES["over_limit"]


@dataclass
class _Answer:
    text: str = ""
    flushed: int = 0  # characters sent as `token` events so far
    citations: list[dict[str, Any]] = field(default_factory=list)
    outcome: str | None = None  # the provider's (the last one it yielded wins)
    suggestions: list[dict[str, Any]] = field(default_factory=list)

    language: str = ""  # the customer's, once the turn's context is read

    def runner_says(self, key: str) -> None:
        """The runner answers instead of the provider (an apology, the cost guard): a decline,
        the phrase `key` in the customer's language."""
        text = phrase(key, self.language)
        self.text, self.citations, self.outcome, self.suggestions = text, [], "declined", []

    def outcome_of(self, *, stopped: bool) -> str:
        if stopped:
            return "stopped"
        if self.outcome in _PROVIDER_OUTCOMES:
            return self.outcome
        if self.outcome is not None:
            logger.warning("the provider gave the unknown outcome %r", self.outcome)
        return "answered" if self.citations else "declined"


_PROVIDER_OUTCOMES = frozenset(OUTCOMES) - {"stopped"}


@dataclass
class _Running:
    claimed: turn_store.ClaimedTurn
    task: asyncio.Task
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    lost: bool = False


class TurnRunner:
    def __init__(self) -> None:
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid4().hex[:8]}"
        self.running: dict[str, _Running] = {}
        self.kicked: dict[str, asyncio.Task] = {}  # conversation ("*": any) -> its claim loop
        self.again: set[str] = set()  # kicked while its claim loop ran: claim once more
        self.maintenance: asyncio.Task | None = None
        self.storing: set[asyncio.Task] = set()  # answers being stored (shielded from cancellation)
        self.closed = False

    def start(self) -> None:
        if self.maintenance is None or self.maintenance.done():
            self.closed = False
            self.maintenance = asyncio.get_running_loop().create_task(self._maintain(), name="turn-runner")

    # -- claiming -----------------------------------------------------------------------

    def kick(self, conversation_id: str | None) -> None:
        """Claim and run this conversation's due turns (or any, with None), one after another."""
        self.start()
        if self.closed:
            return
        key = conversation_id or "*"
        if key in self.kicked and not self.kicked[key].done():
            self.again.add(key)
            return
        task = asyncio.get_running_loop().create_task(self._claim_loop(conversation_id), name=f"claim:{key}")
        self.kicked[key] = task
        task.add_done_callback(lambda t: self.kicked.pop(key, None) if self.kicked.get(key) is t else None)

    async def _claim_loop(self, conversation_id: str | None) -> None:
        key = conversation_id or "*"
        while not self.closed and len(self.running) < settings.ASSISTANT_MAX_TURNS_PER_PROCESS:
            self.again.discard(key)
            await acks_settled(max_wait_s=ACKS_FIRST_MAX_S)
            try:
                claim = await db_async_work(_claim_next)(owner=self.owner, conversation_id=conversation_id)
            except Exception:
                logger.exception("claiming a turn failed")
                return
            if claim is None:
                if key in self.again:
                    continue
                return
            claimed = claim.claimed
            run = self._run(claim)
            if conversation_id is not None:
                await run  # one answer at a time per conversation
                if key not in self.again:
                    # Nothing was kicked here meanwhile, so no claim now: it would run just as the
                    # customer, who has the answer, sends the next message, and slow its ack
                    # (bench/ws_sessions.py: p50 2.8 against 3.4 ms). A turn made through another
                    # process meanwhile is swept up (SWEEP_S).
                    return
            else:
                run.add_done_callback(lambda t, c=claimed.conversation_id: self.kick(c))

    def _run(self, claim: _Claim) -> asyncio.Task:
        claimed = claim.claimed
        task = asyncio.get_running_loop().create_task(self._turn(claim), name=f"turn:{claimed.id}")
        running = _Running(claimed, task)
        if claimed.stop_requested:
            running.stop.set()
        self.running[claimed.id] = running
        task.add_done_callback(lambda _t: self.running.pop(claimed.id, None))
        return task

    # -- maintenance: sweep, renew leases, watch stop flags --------------------------------

    async def _maintain(self) -> None:
        next_sweep = next_renew = 0.0
        while not self.closed:
            now = time.monotonic()
            try:
                if self.running:
                    for turn_id in await live_state.stop_flags_get(list(self.running)):
                        self.running[turn_id].stop.set()
                if now >= next_renew:
                    next_renew = now + LEASE_RENEW_S
                    await self._renew()
                if now >= next_sweep:
                    next_sweep = now + SWEEP_S
                    if "*" not in self.kicked:
                        self.kick(None)
            except Exception:  # Postgres or Redis away for a moment: try again next round
                logger.exception("turn runner maintenance failed")
            await asyncio.sleep(STOP_POLL_S)

    async def _renew(self) -> None:
        held = list(self.running)
        if not held:
            return
        kept = await db_async_work(turn_store.turns_renew)(owner=self.owner, turn_ids=held)
        for turn_id in held:
            running = self.running.get(turn_id)
            if running is None:
                continue
            if turn_id not in kept:  # another runner took it over while we stalled: drop it
                running.lost = True
                running.stop.set()
            elif kept[turn_id]:
                running.stop.set()

    # -- one answer -------------------------------------------------------------------------

    async def _turn(self, claim: _Claim) -> None:
        with log_context(conversation_id=claim.claimed.conversation_id, turn_id=claim.claimed.id):
            await self._answer(claim)

    async def _answer(self, claim: _Claim) -> None:
        claimed = claim.claimed
        running = self.running[claimed.id]
        conversation_id, message_id = claimed.conversation_id, claimed.message_id
        answer = _Answer()
        stopped = answered = False
        partial: asyncio.Task | None = None
        try:
            turn = claim.context()
            answer.language = turn.language if turn is not None else ""
            answered = turn is not None or claimed.attempts > 1  # a restarted stream must end
            if turn is None:
                stopped = running.stop.is_set()
            elif claimed.over_limit:
                answer.runner_says("over_limit")  # the cost guard (counted with the claim): no provider call
            elif not running.stop.is_set():
                partial = _partial_start(conversation_id, message_id)
                if claimed.attempts > 1:
                    await aevent_broadcast(
                        conversation_id=conversation_id, type="partial",
                        payload={"message_id": message_id, "text": ""},
                    )
                stopped = await self._generate_until_stopped(turn, claimed, running, answer, partial)
            else:
                stopped = True
        except asyncio.CancelledError:
            raise  # handover or test teardown: the lease lapses or was released; another runner answers
        except Exception:
            logger.exception("answer of conversation %s failed", conversation_id)
            if not answer.text:
                answer.runner_says("apology")
        if running.lost:
            return
        if partial is not None:
            await asyncio.wait([partial])  # cleared after it was written, not before
        with contextlib.suppress(Exception):
            await live_state.partial_clear(conversation_id)
        await self._finish(claimed, answer, stopped=stopped, answered=answered)

    async def _generate_until_stopped(
        self, turn: Turn, claimed: turn_store.ClaimedTurn, running: _Running, answer: _Answer,
        partial: asyncio.Task,
    ) -> bool:
        """Stream the answer until it ends or a stop arrives; True when stopped."""
        generating = asyncio.get_running_loop().create_task(_generate(turn, claimed, answer, partial))
        stopping = asyncio.get_running_loop().create_task(running.stop.wait())
        try:
            await asyncio.wait({generating, stopping}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopping.cancel()
            if not generating.done():
                # Do not wait for it: a provider may sit in a thread (retrieval) for seconds.
                generating.cancel()
                generating.add_done_callback(_log_late_failure)
        if not generating.done() or generating.cancelled():
            return True
        if generating.exception() is not None:
            logger.error("answer generation failed", exc_info=generating.exception())
            if not answer.text:
                answer.runner_says("apology")
        return False

    async def _finish(
        self, claimed: turn_store.ClaimedTurn, answer: _Answer, *, stopped: bool, answered: bool
    ) -> None:
        outcome = answer.outcome_of(stopped=stopped)
        fields = {
            "turn_id": claimed.id, "owner": self.owner, "text": answer.text, "citations": answer.citations,
            "stopped": stopped, "answered": answered, "outcome": outcome, "suggestions": answer.suggestions,
        }
        for attempt in range(FINISH_ATTEMPTS):
            storing = asyncio.get_running_loop().create_task(_store(fields))
            self.storing.add(storing)
            storing.add_done_callback(self.storing.discard)
            try:
                # Once committed, its events must go out even if this task is cancelled now.
                await asyncio.shield(storing)
                metrics.answers_total.labels(outcome=outcome if answered else "silent").inc()
                return
            except Exception:
                # Postgres away: retry while our lease may still hold; after that the turn
                # lapses and another runner answers it again.
                logger.exception("storing the answer of turn %s failed (attempt %d)", claimed.id, attempt + 1)
                await asyncio.sleep(min(0.5 * 2**attempt, 4))

    # -- shutdown ---------------------------------------------------------------------------

    async def handover(self) -> None:
        """Stop generating here and hand every turn we hold back to the other runners."""
        self.closed = True
        tasks = [r.task for r in self.running.values()] + list(self.kicked.values())
        if self.maintenance is not None:
            tasks.append(self.maintenance)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await asyncio.gather(*self.storing, return_exceptions=True)  # stored answers go out first
        released = await db_async_work(turn_store.turns_release)(owner=self.owner)
        if released:
            logger.info("handed %d running turn(s) over to other processes", released)

    async def settle(self) -> None:
        """Stop every turn of this runner and wait until they are stored (tests)."""
        while self.running or any(not t.done() for t in self.kicked.values()):
            for running in list(self.running.values()):
                running.stop.set()
            await asyncio.sleep(0.05)
        await asyncio.gather(*self.storing, return_exceptions=True)
        if self.maintenance is not None:  # the loop may end with the test: leave no task behind
            self.maintenance.cancel()
            await asyncio.gather(self.maintenance, return_exceptions=True)
            self.maintenance = None


async def _store(fields: dict[str, Any]) -> None:
    """Store the answer and run its listeners (one trip to a database thread), then send its
    events from this loop."""
    _message, events = await db_async_work(turn_store.turn_finish_deferred)(**fields)
    await abroadcast_collected(events)


@dataclass
class _Claim:
    """A claimed turn with what its provider answers, read on the same trip to the database."""

    claimed: turn_store.ClaimedTurn
    turn: Turn | None
    error: Exception | None = None

    def context(self) -> Turn | None:
        if self.error is not None:  # fails the answer (an apology), as a failed read there would
            raise self.error
        return self.turn


def _claim_next(*, owner: str, conversation_id: str | None) -> _Claim | None:
    claimed = turn_store.turn_claim(owner=owner, conversation_id=conversation_id)
    if claimed is None:
        return None
    try:
        return _Claim(claimed, _with_tools(claimed))
    except Exception as exc:  # the turn is ours now: its answer reports the failure
        return _Claim(claimed, None, exc)


def _with_tools(claimed: turn_store.ClaimedTurn) -> Turn | None:
    from apps.connectors.toolbox import toolbox_of

    turn = claimed.turn
    if turn is None or claimed.customer is None:
        return None
    tools = toolbox_of(conversation_id=turn.conversation_id, customer=claimed.customer, turn_id=claimed.id,
                       language=turn.language)
    return dataclasses.replace(turn, tools=tools)


def _partial_start(conversation_id: str, message_id: str) -> asyncio.Task:
    """Write the answer's live partial (what a socket resuming before the first token is told:
    an answer is coming) while the answer starts, not before it: under a burst each Redis round
    trip waits a pass of a crowded event loop. The first token's append waits for it; the answer
    never fails for it (live state is best effort, the stored answer is whole)."""
    task = asyncio.get_running_loop().create_task(live_state.partial_start(conversation_id, message_id))
    task.add_done_callback(_log_partial_failure)
    return task


def _log_partial_failure(task: asyncio.Task) -> None:
    if not task.cancelled() and task.exception() is not None:
        logger.warning("the live partial of an answer was not written: %r", task.exception())


def _log_late_failure(task: asyncio.Task) -> None:
    if not task.cancelled() and task.exception() is not None:
        logger.warning("a stopped answer failed after its stop: %r", task.exception())


class _TokenStream:
    """Coalesces an answer's deltas: the first goes out at once, then at most one `token`
    event per interval, each one Redis append and one channel-layer message. The interval is
    ASSISTANT_TOKEN_FLUSH_S, longer when this process streams so many answers at once that
    they would pass ASSISTANT_TOKEN_FRAMES_PER_S together (then frames carry more words each,
    instead of queueing behind each other)."""

    def __init__(self, conversation_id: str, message_id: str, answer: _Answer, partial: asyncio.Task) -> None:
        self.conversation_id, self.message_id, self.answer = conversation_id, message_id, answer
        self.partial = partial  # the partial's start (`_partial_start`): appends come after it
        self.ready = asyncio.Event()
        self.closed = False
        self.pump = asyncio.get_running_loop().create_task(self._pump())

    def push(self) -> None:
        self.ready.set()

    async def close(self) -> None:
        self.closed = True
        self.ready.set()
        await self.pump

    async def _pump(self) -> None:
        while True:
            await self.ready.wait()
            self.ready.clear()
            await self._flush()
            if self.closed:
                await self._flush()  # what arrived while the last flush was on its way
                return
            await asyncio.sleep(_flush_interval())

    async def _flush(self) -> None:
        answer = self.answer
        text, offset = answer.text[answer.flushed :], answer.flushed
        if not text:
            return
        answer.flushed = len(answer.text)
        whole = answer.text[: answer.flushed]
        if not self.partial.done():
            await asyncio.wait([self.partial])
        try:
            await live_state.partial_append(self.conversation_id, self.message_id, text, whole)
            await aevent_broadcast(
                conversation_id=self.conversation_id, type="token",
                payload={"message_id": self.message_id, "text": text}, meta={"offset": offset},
            )
        except Exception:  # Redis away: live tokens are best effort, the stored answer is whole
            logger.warning("a token of answer %s was not broadcast", self.message_id, exc_info=True)


def _flush_interval() -> float:
    streaming = sum(len(r.running) for r in runtime().loop_values(RUNNER))
    return max(settings.ASSISTANT_TOKEN_FLUSH_S, streaming / settings.ASSISTANT_TOKEN_FRAMES_PER_S)


async def _generate(
    turn: Turn, claimed: turn_store.ClaimedTurn, answer: _Answer, partial: asyncio.Task
) -> None:
    try:
        provider = provider_get()
    except ProviderUnavailable as exc:
        logger.error("%s", exc)
        answer.runner_says("apology")
        return
    stream = _TokenStream(claimed.conversation_id, claimed.message_id, answer, partial)
    try:
        async for chunk in provider.answer(turn):
            if chunk.citations is not None:
                answer.citations = chunk.citations
            if chunk.outcome is not None:
                answer.outcome = chunk.outcome
            if chunk.suggestions is not None:
                answer.suggestions = chunk.suggestions
            if chunk.text:
                answer.text += chunk.text
                stream.push()
        await stream.close()
    finally:
        stream.pump.cancel()


# -- the module API -----------------------------------------------------------------------------

# One runner per event loop, kept by the process's runtime (apps/core/runtime.py): started by
# the ASGI lifespan through the component the app registers (apps/assistant/apps.py), or on
# first use under Daphne, which has no lifespan.
RUNNER = "turns.runner"


def runner() -> TurnRunner:
    """This loop's runner (started on first use)."""
    found = runtime().loop_get(RUNNER, TurnRunner)
    found.start()
    return found


def runner_start() -> None:
    runner()


async def runner_handover() -> None:
    found = runtime().loop_peek(RUNNER)
    if found is not None:
        await found.handover()


async def turn_kick(*, conversation_id: UUID | str) -> None:
    runner().kick(str(conversation_id))


async def turn_stop(*, conversation_id: UUID | str) -> list[str]:
    """Stop every answer due or being generated in the conversation (from any process)."""
    turn_ids = await db_async(turn_store.turns_stop)(conversation_id=conversation_id)
    await turns_stop_signal(turn_ids)
    if turn_ids:  # due ones nobody runs yet end here, at once
        runner().kick(str(conversation_id))
    return turn_ids


async def turns_stop_signal(turn_ids: list[str]) -> None:
    """Tell the runners holding these turns (here or elsewhere) to stop them now."""
    if not turn_ids:
        return
    mine = runner().running
    for turn_id in turn_ids:
        if turn_id in mine:
            mine[turn_id].stop.set()
    await live_state.stop_flags_set(turn_ids)


async def turn_partial(*, conversation_id: UUID | str) -> tuple[str, str] | None:
    return await live_state.partial_get(conversation_id)


async def turns_settle() -> None:
    found = runtime().loop_peek(RUNNER)
    if found is not None:
        await found.settle()
