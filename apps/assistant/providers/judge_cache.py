"""Verdicts of identical judgements, shared (apps/assistant/providers/openai.py's judge).

The judge is asked at temperature 0 with the passages, the recent history and the question; the
same request gets the same verdict. A question asked again and again (a tapped suggestion, an
outage everyone asks about) then costs one model call, and the customers who ask it at the same
moment wait for that one call together instead of each sending their own.

Per event loop (the runtime's `judge.cache`): usable verdicts only (an unusable reply is asked
again next time), for JUDGE_CACHE_S at most, LLM_JUDGE_CACHE of them (0: off). A caller
cancelled while others wait for the same call leaves it running for them; the last one
cancels it (a customer's `stop` still aborts the request).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from django.conf import settings

from apps.core.runtime import runtime
from apps.core.single_flight import SingleFlight

T = TypeVar("T")
JUDGE_CACHE_S = 600.0


class JudgeCache:
    def __init__(self, size: int) -> None:
        self.size = size
        self._done: OrderedDict[str, tuple[float, Any]] = OrderedDict()
        self._flights = SingleFlight()
        self.calls = 0  # requests made (tests and benches read it)

    async def verdict(self, request: dict[str, Any], ask: Callable[[], Awaitable[T | None]]) -> T | None:
        """`ask()`'s verdict for `request` (what identifies the judgement), shared."""
        if self.size <= 0:
            self.calls += 1
            return await ask()
        key = hashlib.sha256(json.dumps(request, sort_keys=True, default=str).encode()).hexdigest()
        kept = self._done.get(key)
        if kept is not None and kept[0] > time.monotonic():
            self._done.move_to_end(key)
            return kept[1]
        return await self._flights.run(key, lambda: self._ask(ask), lambda task: self._landed(key, task))

    async def _ask(self, ask: Callable[[], Awaitable[T | None]]) -> T | None:
        self.calls += 1
        return await ask()

    def _landed(self, key: str, task: asyncio.Future) -> None:
        if task.cancelled() or task.exception() is not None or task.result() is None:
            return
        self._done[key] = (time.monotonic() + JUDGE_CACHE_S, task.result())
        self._done.move_to_end(key)
        while len(self._done) > self.size:
            self._done.popitem(last=False)


def judge_cache() -> JudgeCache:
    """This loop's cache."""
    return runtime().loop_get("judge.cache", lambda: JudgeCache(settings.LLM_JUDGE_CACHE))
