"""The listener's batch: conversations whose facts may have changed in this process, refreshed
together a moment later (REPORTS_REFRESH_DELAY_S, 5 s by default) by one thread of the process,
instead of a refresh (~8 queries) after every committed event batch on the chat path's heels.

A chat turn commits two or three event batches for one conversation, and a busy process
commits many conversations' batches a second: one refresh of all of them costs a fraction.
What a process loses by dying within that moment, the sweep finds again (every durable event
bumps the conversation's updated_at; `facts_sweep` refreshes those changed since their fact,
apps/reports/tasks.py, every 10 minutes), and the nightly rebuild recomputes everything.

The runtime keeps it as `reports.pending` (apps/core/runtime.py): made on first use, and
closed when the process stops (the thread refreshes what is left, then ends).
`facts_pending_flush()` refreshes the batch now, in the caller's thread (tests, a shutdown).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from uuid import UUID

from django.conf import settings
from django.db import connections

from apps.core.runtime import runtime

from .facts import facts_refresh

logger = logging.getLogger(__name__)

BATCH = 500  # conversations per refresh transaction


class PendingFacts:
    def __init__(self) -> None:
        self._ids: set[str] = set()
        self._wake = threading.Condition()
        self._flushing = threading.Lock()  # one flush at a time: the thread's or a caller's
        self._thread: threading.Thread | None = None
        self._closed = False

    def add(self, ids: Iterable[UUID | str]) -> None:
        with self._wake:
            self._ids.update(str(i) for i in ids)
            if self._thread is None or not self._thread.is_alive():
                self._closed = False
                self._thread = threading.Thread(target=self._run, name="reports-pending", daemon=True)
                self._thread.start()
            self._wake.notify()

    def __len__(self) -> int:
        return len(self._ids)

    def flush(self) -> int:
        """Refresh every pending conversation now; returns how many facts changed. Never raises:
        a failed batch is logged and left to the sweep."""
        with self._flushing:
            with self._wake:
                ids, self._ids = sorted(self._ids), set()
            changed = 0
            for start in range(0, len(ids), BATCH):
                try:
                    changed += facts_refresh(ids=ids[start:start + BATCH])
                except Exception:
                    logger.exception("refreshing the report facts of %d conversations failed",
                                     len(ids[start:start + BATCH]))
            return changed

    def close(self) -> None:
        """Stop the thread after it refreshed what is pending (at process stop)."""
        with self._wake:
            self._closed = True
            self._wake.notify()
            thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=30)

    def _run(self) -> None:
        try:
            while True:
                with self._wake:
                    while not self._ids and not self._closed:
                        self._wake.wait()
                    if not self._closed:
                        # The moment to gather more: the first id starts it, a close ends it early.
                        self._wake.wait_for(lambda: self._closed, timeout=_delay())
                    closing = self._closed
                self.flush()
                connections["default"].close_if_unusable_or_obsolete()
                if closing:
                    return
        finally:
            connections.close_all()  # this thread's connections


def _delay() -> float:
    return max(0.0, float(settings.REPORTS_REFRESH_DELAY_S))


def pending() -> PendingFacts:
    return runtime().get("reports.pending", PendingFacts, close=PendingFacts.close)


def facts_mark(ids: Iterable[UUID | str]) -> None:
    """These conversations changed: refresh their facts now (delay 0) or with the next batch."""
    if _delay() <= 0:
        facts_refresh(ids=ids)
    else:
        pending().add(ids)


def facts_pending_flush() -> int:
    """Refresh the pending batch now, in this thread (a test, before reading the figures)."""
    entry = runtime().peek("reports.pending")
    return entry.flush() if entry is not None else 0
