"""Query embeddings batched across concurrent turns.

Questions that arrive together, from any thread, wait a few milliseconds (EMBEDDING_BATCH_WINDOW_MS)
and go to the model in one call; each caller gets its own row. While a batch is in the model, the
next questions gather behind it (a CPU model gains nothing from two calls at once on the same
cores), so under load batches grow by themselves. The same text asked twice at once is embedded
once. One batcher per embedder object: a batch never mixes models (a knowledge base in Chinese may
use another one, apps/knowledge/embeddings.py).

Used by embeddings.py's query cache on a miss (`vector`); repeated questions never get here.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import Any

import numpy as np
from django.conf import settings

from apps.core.runtime import runtime

Embed = Callable[[Any, Sequence[str]], np.ndarray]  # (embedder, texts) -> one row per text


class QueryBatcher:
    """Collects one embedder's questions into batches; `vector` blocks its caller until its row is ready."""

    def __init__(self, embedder: Any, embed: Embed, *, window_s: float, max_batch: int) -> None:
        self.embedder, self.embed = embedder, embed
        self.window_s, self.max_batch = window_s, max(1, max_batch)
        self.calls = 0  # model calls made (tests, benches)
        self._cond = threading.Condition()
        self._waiting: dict[str, Future] = {}  # the next batch
        self._in_model: dict[str, Future] = {}  # the batch being embedded
        self._leading = False  # a caller is gathering the next batch and will run it

    def vector(self, text: str) -> np.ndarray:
        with self._cond:
            future = self._waiting.get(text) or self._in_model.get(text)
            lead = False
            if future is None:
                future = self._waiting[text] = Future()
                if len(self._waiting) >= self.max_batch:
                    self._cond.notify_all()
                lead, self._leading = not self._leading, True
        if lead:  # the first caller of a batch runs it in its own thread: no thread of our own
            self._run(self._gather())
        return future.result()

    def _gather(self) -> dict[str, Future]:
        with self._cond:
            deadline = time.monotonic() + self.window_s
            while len(self._waiting) < self.max_batch:
                left = deadline - time.monotonic()
                if left <= 0 and not self._in_model:
                    break
                self._cond.wait(left if left > 0 else None)  # woken when the batch in the model ends
            batch, self._waiting = self._waiting, {}
            self._in_model, self._leading = {**self._in_model, **batch}, False
            self.calls += 1
            return batch

    def _run(self, batch: dict[str, Future]) -> None:
        try:
            rows = self.embed(self.embedder, list(batch))
        except BaseException as exc:  # every caller of the batch sees the model's failure
            for future in batch.values():
                future.set_exception(exc)
            if not isinstance(exc, Exception):
                raise
        else:
            for future, row in zip(batch.values(), rows, strict=True):
                future.set_result(row)
        finally:
            with self._cond:
                for text in batch:
                    self._in_model.pop(text, None)
                self._cond.notify_all()


def _batchers() -> dict[Any, QueryBatcher]:
    # Cleared at the runtime's stop: an openai embedder is made again after it (another object).
    return runtime().get("knowledge.query_batchers", dict, close=dict.clear)


_lock = threading.Lock()


def batcher_for(embedder: Any, embed: Embed) -> QueryBatcher:
    found = _batchers().get(embedder)
    if found is None:
        with _lock:
            found = _batchers().setdefault(embedder, QueryBatcher(
                embedder, embed, window_s=settings.EMBEDDING_BATCH_WINDOW_MS / 1000,
                max_batch=settings.EMBEDDING_BATCH_MAX,
            ))
    return found


def vector(embedder: Any, text: str, *, embed: Embed) -> np.ndarray:
    """`text`'s query vector from `embed(embedder, texts)`, batched with the questions asked at the
    same moment (EMBEDDING_BATCH_WINDOW_MS=0: still batched behind a call in progress)."""
    return batcher_for(embedder, embed).vector(text)
