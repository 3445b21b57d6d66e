"""The per-process runtime: every singleton of a Kefu process, in one object with a start and a stop.

Built by the ASGI lifespan (apps/core/lifespan.py: `lifespan.startup` / `lifespan.shutdown`)
and by the Celery worker (config/celery.py: `worker_process_init` / `worker_process_shutdown`).
Under Daphne, which has no lifespan, nothing calls `start`: every entry is also made on first
use, so the process works the same (the assistant's runner starts with the first chat socket).

What it owns (the name each is kept under):
- process-wide, made on first use (those with a close are closed at stop and made again on next use):
  `redis.sync` (apps/core/redis.py), `ratelimit.memory` / `ratelimit.sync` / `ratelimit.sockets`
  (apps/core/ratelimit.py),
  `health.celery` (the cached worker ping, apps/core/health.py), `db.<pool>` (the thread pools of
  apps/core/db.py), `publisher` (apps/conversations/publisher.py), `http.tokens` (OAuth2 tokens,
  apps/connectors/http.py), `knowledge.embedder|<provider>|<model>` (an openai one closes its
  HTTP client; a local model stays loaded), `knowledge.query_cache` (query vectors, LRU),
  `knowledge.search_cache` (recent searches' passages, apps/knowledge/search_cache.py),
  `knowledge.vocabulary` (each KB's words, for spelling: apps/knowledge/spelling.py) and
  `knowledge.vector_dimensions` (apps/knowledge/embeddings.py, selectors.py),
  `webhooks.any_enabled` (apps/webhooks/outgoing.py);
- per event loop (redis.asyncio connections belong to the loop that made them; tests run a loop
  per test), made on first use in that loop and closed at stop when it is the stopping loop, or
  when the loop ends (its tasks cancelled) without a stop:
  `redis.async`, `redis.async_waits`, `db.loop_connections` (the chat
  message's Postgres connections, apps/core/db_loop.py), `turns.runner` (apps/assistant/turns.py),
  `openai.clients` (apps/assistant/providers/openai.py), `openai.stream_session` (the answer
  stream's aiohttp session, apps/assistant/providers/completion_stream.py), `heartbeat`
  (apps/realtime/heartbeat.py),
  `console.crm_panels` (the CRM panels' semaphore, apps/console/views.py), `acks_first` (the
  acks pending on the loop, apps/core/acks_first.py), `judge.cache` (shared judge verdicts,
  apps/assistant/providers/judge_cache.py), `grounding.flights` (searches in flight, shared by
  identical questions, apps/assistant/grounding.py `aground`);
- components: what upper apps register from their AppConfig.ready
  (`runtime_component_register`), started in order and stopped in reverse, so this layer never
  imports them (e.g. the assistant starts its turn runner and hands its turns over).

Constants (compiled regexes, prometheus metrics, contextvars) stay module globals, and so do
caches of pure functions of their arguments that hold no connection (parsed rate strings,
Fernet keys, the tokenizer) and apps.widget's file cache (the widget may not import this layer).
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import threading
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

logger = logging.getLogger(__name__)

T = TypeVar("T")
Kind = Literal["asgi", "worker"]
Hook = Callable[["Runtime"], Any]  # may return an awaitable (run on the ASGI loop)


@dataclass(frozen=True)
class Component:
    name: str
    start: Hook | None
    stop: Hook | None
    kinds: frozenset[str]


@dataclass
class _Entry:
    value: Any
    close: Callable[[Any], Any] | None


class Runtime:
    def __init__(self) -> None:
        self.kind: Kind | None = None  # set by start
        self.components: list[Component] = []
        self._lock = threading.RLock()
        self._entries: dict[str, _Entry] = {}
        self._loops: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, _Entry]] = (
            weakref.WeakKeyDictionary()
        )

    # -- entries ---------------------------------------------------------------------------

    def get(self, name: str, factory: Callable[[], T], *, close: Callable[[T], Any] | None = None) -> T:
        """The process-wide `name`, made by `factory` on first use."""
        with self._lock:
            entry = self._entries.get(name)
            if entry is None:
                entry = self._entries[name] = _Entry(factory(), close)
            return entry.value

    def peek(self, name: str) -> Any | None:
        entry = self._entries.get(name)
        return None if entry is None else entry.value

    def forget(self, name: str) -> Any | None:
        """Drop `name` without closing it (a test that moved REDIS_URL, a cache cleared)."""
        with self._lock:
            entry = self._entries.pop(name, None)
        return None if entry is None else entry.value

    def loop_get(self, name: str, factory: Callable[[], T], *, close: Callable[[T], Any] | None = None) -> T:
        """The running loop's `name`, made by `factory` on first use in that loop."""
        loop = asyncio.get_running_loop()
        per_loop = self._loops.get(loop)
        if per_loop is None:
            per_loop = self._loops[loop] = {}
            self._close_at_loop_end(loop)
        entry = per_loop.get(name)
        if entry is None:
            entry = per_loop[name] = _Entry(factory(), close)
        return entry.value

    def _close_at_loop_end(self, loop: asyncio.AbstractEventLoop) -> None:
        """Close the loop's entries when its tasks are cancelled as it ends (`asyncio.run`,
        asgiref, pytest-asyncio do that) and `stop` did not close them first: a loop that
        ended with an open aiohttp session or Redis connection would leave it to the garbage
        collector, which only warns."""

        async def wait_for_the_end() -> None:
            try:
                await asyncio.Event().wait()
            finally:
                for name, entry in self._loops.pop(loop, {}).items():
                    if entry.close is not None:
                        await _run(f"closing {name}", entry.close, entry.value)

        task = loop.create_task(wait_for_the_end(), name="runtime-loop-entries")
        _loop_end_tasks.add(task)  # a task the loop holds only weakly
        task.add_done_callback(_loop_end_tasks.discard)

    def loop_peek(self, name: str) -> Any | None:
        try:
            entry = self._loops.get(asyncio.get_running_loop(), {}).get(name)
        except RuntimeError:  # no running loop
            return None
        return None if entry is None else entry.value

    def loop_values(self, name: str) -> list[Any]:
        """`name` of every live loop (e.g. all runners, to count the answers streaming)."""
        return [entries[name].value for entries in list(self._loops.values()) if name in entries]

    def loop_forget(self, name: str) -> None:
        for entries in list(self._loops.values()):
            entries.pop(name, None)

    # -- start and stop --------------------------------------------------------------------

    async def start(self, kind: Kind = "asgi") -> None:
        self.kind = kind
        for component in self.components:
            if component.start and kind in component.kinds:
                result = component.start(self)
                if inspect.isawaitable(result):
                    await result

    async def stop(self) -> None:
        """Stop the components (reverse order), then close the entries that have a close (made
        again on next use); this loop's other entries go with it, the process's stay (the
        publisher keeps its listeners). A failure is logged and the rest still close: the
        database or Redis may be gone too."""
        for component in self._stopping():
            await _run(f"stopping {component.name}", component.stop, self)
        for name, entry in self._closing():
            await _run(f"closing {name}", entry.close, entry.value)

    def start_sync(self, kind: Kind = "worker") -> None:
        """`start` for a process without an event loop (a Celery worker): its hooks are sync."""
        self.kind = kind
        for component in self.components:
            if component.start and kind in component.kinds:
                _sync(component.start(self))

    def stop_sync(self) -> None:
        for component in self._stopping():
            _run_sync(f"stopping {component.name}", component.stop, self)
        for name, entry in self._closing():
            _run_sync(f"closing {name}", entry.close, entry.value)

    def _stopping(self) -> list[Component]:
        kind = self.kind or "asgi"
        return [c for c in reversed(self.components) if c.stop and kind in c.kinds]

    def _closing(self) -> list[tuple[str, _Entry]]:
        try:
            own = self._loops.pop(asyncio.get_running_loop(), {})
        except RuntimeError:  # no running loop: a worker
            own = {}
        with self._lock:
            closing = {name: e for name, e in self._entries.items() if e.close is not None}
            for name in closing:
                del self._entries[name]
        return [(name, e) for name, e in [*own.items(), *closing.items()] if e.close is not None]


def _sync(result: Any) -> None:
    if inspect.isawaitable(result):
        asyncio.run(result)  # type: ignore[arg-type]


def _run_sync(what: str, fn: Callable[[Any], Any], arg: Any) -> None:
    try:
        _sync(fn(arg))
    except Exception:
        logger.exception("%s failed", what)


async def _run(what: str, fn: Callable[[Any], Any], arg: Any) -> None:
    try:
        result = fn(arg)
        if inspect.isawaitable(result):
            await result
    except Exception:
        logger.exception("%s failed", what)


_runtime = Runtime()
_loop_end_tasks: set[asyncio.Task] = set()


def runtime() -> Runtime:
    """This process's runtime (the one mutable module global left in core)."""
    return _runtime


class RuntimeEntry:
    """A module-level name for the process-wide entry `name` (made by `factory` on first use):
    attribute access goes to the runtime's current one, so tests and benches can read a cache's
    counters or clear it by the name they import, and a runtime stop makes a fresh one."""

    def __init__(self, name: str, factory: Callable[[], Any]) -> None:
        self._name, self._factory = name, factory

    def value(self) -> Any:
        return _runtime.get(self._name, self._factory)

    def __getattr__(self, attr: str) -> Any:
        return getattr(self.value(), attr)


def runtime_component_register(
    name: str, *, start: Hook | None = None, stop: Hook | None = None,
    kinds: tuple[Kind, ...] = ("asgi", "worker"),
) -> None:
    """From an AppConfig.ready: run `start(runtime)` when the process starts and `stop(runtime)`
    when it stops (only in the kinds of process named). Registering a name again replaces it."""
    component = Component(name, start, stop, frozenset(kinds))
    _runtime.components = [c for c in _runtime.components if c.name != name] + [component]
