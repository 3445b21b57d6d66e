"""Acks before answers: background work on a loop yields to the clients waiting for an ack.

A burst of customers writing at once makes hundreds of answers due within a second. Each
answer's claim, retrieval and token stream costs the event loop and the GIL what the next
customer's ack needs, so the last acks of a burst waited seconds behind answers of the first.
The chat socket marks the span from a frame to its ack (`acking`); the turn runner waits, before
it claims a turn, until no ack is pending on its loop (`acks_settled`), at most `max_wait_s`,
so a steady stream of messages delays an answer by that much and never starves it. The chat
socket's own work after an ack (following a new conversation, broadcasting the message to the
customer's other tabs and the console, kicking the answer) waits the same way: in a burst of
500 first messages it had pushed the last acks to 4x the durable baseline (bench/ws_sessions.py).

Per event loop (the runtime's `acks_first` entry): one counter and one event, no lock.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator

from .runtime import runtime

_NAME = "acks_first"
ACKS_FIRST_MAX_S = 2.0  # the longest background work waits for this loop's pending acks


class _Pending:
    def __init__(self) -> None:
        self.count = 0
        self.settled = asyncio.Event()
        self.settled.set()

    def enter(self) -> None:
        self.count += 1
        self.settled.clear()

    def leave(self) -> None:
        self.count -= 1
        if self.count == 0:
            self.settled.set()


def _pending() -> _Pending:
    return runtime().loop_get(_NAME, _Pending)


@contextlib.contextmanager
def acking() -> Iterator[None]:
    """Around the work between a client's frame and its ack (on the event loop)."""
    pending = _pending()
    pending.enter()
    try:
        yield
    finally:
        pending.leave()


async def acks_settled(*, max_wait_s: float) -> None:
    """Return once no ack is pending on this loop, or after `max_wait_s`."""
    settled = _pending().settled
    if settled.is_set():
        return
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(settled.wait(), max_wait_s)
