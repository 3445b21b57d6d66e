"""The turn runner: answers customer messages, streaming, in the ASGI process.

Public API (all async, call from the server's event loop):
- `turn_request(conversation_id=)`: a customer message that needs an answer was stored.
  Returns at once; the answer streams from a task of this process, which outlives the
  socket that asked. At most one turn runs per conversation across all processes (a Redis
  lock); messages that arrive meanwhile are answered next, by whoever holds the lock.
- `turn_stop(conversation_id=)`: stop the answer now being generated, wherever it runs;
  it ends within STOP_POLL_S plus one provider step.
- `turn_partial(conversation_id=)`: (message_id, text so far) of the answer being generated.
- `turns_settle()`: stop and wait for this loop's turns (tests, shutdown).

One answer, as the conversation's sockets see it:
    token* (live, `message_id`, deltas)            while generating; text so far kept in Redis
    message (durable, seq n, role assistant, final text, citations)
    message_end (durable, seq n + 1, `message_id`, final text, citations, stopped)
The partial text is dropped from Redis just before the final events commit, so a socket that
resumes sees either the partial (and later the final events) or the final events, never both
out of order and never neither.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID, uuid4

from channels.db import database_sync_to_async
from django.utils import timezone

from apps.conversations.events import aevent_broadcast

from . import state
from .providers import ProviderUnavailable, Turn, provider_get
from .services import answer_store, turn_context

logger = logging.getLogger(__name__)

STOP_POLL_S = 0.2
APOLOGY = "Sorry, I can't answer right now. Would you like to talk to a person?"

_tasks: set[asyncio.Task] = set()


async def turn_request(*, conversation_id: UUID | str) -> None:
    """Answer the conversation's newest customer message (now, or after the running turn)."""
    await state.pending_set(conversation_id)
    owner = uuid4().hex
    if await state.lock_acquire(conversation_id, owner):
        task = asyncio.get_running_loop().create_task(
            _turn_loop(str(conversation_id), owner), name=f"turn:{conversation_id}"
        )
        _tasks.add(task)
        task.add_done_callback(_tasks.discard)


async def turn_stop(*, conversation_id: UUID | str) -> bool:
    """Ask the answer being generated to stop; False when nothing is being generated."""
    return await state.stop_request(conversation_id)


async def turn_partial(*, conversation_id: UUID | str) -> tuple[str, str] | None:
    return await state.partial_get(conversation_id)


async def turns_settle() -> None:
    """Stop every turn of this loop and wait until they have stored their answers."""
    current = asyncio.get_running_loop()
    mine = [t for t in _tasks if t.get_loop() is current]
    while mine:
        for task in mine:
            conversation_id = task.get_name().removeprefix("turn:")
            with contextlib.suppress(Exception):
                await state.stop_request(conversation_id)
        await asyncio.wait(mine, timeout=1)
        mine = [t for t in _tasks if t.get_loop() is current and not t.done()]


async def _turn_loop(conversation_id: str, owner: str) -> None:
    try:
        while True:
            if await state.pending_take(conversation_id):
                await _turn_run(conversation_id, owner)
                continue
            await state.lock_release(conversation_id, owner)
            # A message that came in after pending_take but found the lock taken: ours now.
            if await state.pending_exists(conversation_id) and await state.lock_acquire(
                conversation_id, owner
            ):
                continue
            return
    except Exception:
        logger.exception("assistant turn loop of conversation %s failed", conversation_id)
        with contextlib.suppress(Exception):
            await state.lock_release(conversation_id, owner)


@dataclass
class _Answer:
    text: str = ""
    citations: list[dict[str, Any]] = field(default_factory=list)


async def _turn_run(conversation_id: str, owner: str) -> None:
    turn = await database_sync_to_async(turn_context)(conversation_id=conversation_id)
    if turn is None:
        return
    message_id = str(uuid4())
    started_at = timezone.now()
    await state.partial_start(conversation_id, message_id)
    answer = _Answer()
    generating = asyncio.get_running_loop().create_task(_generate(turn, message_id, answer))
    stopped = False
    try:
        while not generating.done():
            await asyncio.wait({generating}, timeout=STOP_POLL_S)
            if not generating.done() and await state.heartbeat(conversation_id, owner, message_id):
                stopped = True
                generating.cancel()
                await asyncio.wait({generating})
    finally:
        if not generating.done():  # we were cancelled ourselves: do not leave the task behind
            generating.cancel()
    if not generating.cancelled() and generating.exception() is not None:
        logger.error("answer generation failed", exc_info=generating.exception())
        answer.text = answer.text or APOLOGY
    await state.partial_clear(conversation_id)
    await database_sync_to_async(answer_store)(
        conversation_id=conversation_id,
        message_id=message_id,
        text=answer.text,
        citations=answer.citations,
        stopped=stopped,
        started_at=started_at,
    )


async def _generate(turn: Turn, message_id: str, answer: _Answer) -> None:
    try:
        provider = provider_get()
    except ProviderUnavailable as exc:
        logger.error("%s", exc)
        answer.text = APOLOGY
        return
    async for chunk in provider.answer(turn):
        if chunk.citations is not None:
            answer.citations = chunk.citations
        if chunk.text:
            offset = len(answer.text)
            answer.text += chunk.text
            await state.partial_append(turn.conversation_id, chunk.text)
            await aevent_broadcast(
                conversation_id=turn.conversation_id,
                type="token",
                payload={"message_id": message_id, "text": chunk.text},
                meta={"offset": offset},
            )
