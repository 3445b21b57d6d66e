"""Identical calls in flight at the same moment on one event loop share one run.

A burst of customers asking the same question (an outage, a delivery delay) makes the same
search or the same model judgement due dozens of times within a second; each caller awaits
the one run already under way instead of starting its own. Nothing is kept after the run
lands (a caller that wants a cache keeps one: apps/assistant/providers/judge_cache.py), so a
late caller never gets an older result than it would have computed itself.

A caller cancelled while others wait leaves the run going for them; the last one cancels it.
One instance per event loop (its tasks belong to that loop): keep it in the runtime
(apps/core/runtime.py `loop_get`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass
from typing import Any, TypeVar

T = TypeVar("T")


@dataclass
class _Flight:
    task: asyncio.Future
    waiters: int = 0


class SingleFlight:
    def __init__(self) -> None:
        self._flying: dict[Hashable, _Flight] = {}
        self.runs = 0  # runs started (tests and benches read it)

    async def run(
        self, key: Hashable, start: Callable[[], Awaitable[T]],
        landed: Callable[[asyncio.Future], Any] | None = None,
    ) -> T:
        """The result of the run for `key` in flight, or of `start()` begun now. `landed(task)`
        is called once when a run this call began ends (however it ends)."""
        flight = self._flying.get(key)
        if flight is None:
            self.runs += 1
            flight = self._flying[key] = _Flight(asyncio.ensure_future(start()))
            flight.task.add_done_callback(lambda _t, f=flight: self._landed(key, f, landed))
        flight.waiters += 1
        try:
            return await asyncio.shield(flight.task)
        except asyncio.CancelledError:
            if flight.waiters == 1 and not flight.task.done():
                flight.task.cancel()
            raise
        finally:
            flight.waiters -= 1

    def _landed(self, key: Hashable, flight: _Flight, landed: Callable[[asyncio.Future], Any] | None) -> None:
        if self._flying.get(key) is flight:
            del self._flying[key]
        if landed is not None:
            landed(flight.task)
