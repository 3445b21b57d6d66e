"""Recent searches' passages, per process: customers ask the same questions in bursts (a
delivery delay, an outage), and a repeat then costs the two small reads that make its key
instead of a search (spelling, embedding, vector and full-text queries, label similarities).

The key holds everything a search's result depends on (retrieval.py `search`): the knowledge
base's index version (a document added, re-indexed or removed changes it, so nothing stale is
ever served), its language and embedding model, the query, the arguments and the module's
tuning constants. Passages are frozen dataclasses; callers get a list of their own.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable
from typing import Any

from django.conf import settings

from apps.core.runtime import RuntimeEntry


class SearchCache:
    def __init__(self, size: int) -> None:
        self.size = size
        self._items: OrderedDict[Hashable, tuple[Any, ...]] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, key: Hashable) -> list[Any] | None:
        with self._lock:
            found = self._items.get(key)
            if found is None:
                self.misses += 1
                return None
            self._items.move_to_end(key)
            self.hits += 1
            return list(found)

    def put(self, key: Hashable, passages: list[Any]) -> None:
        if self.size <= 0:
            return
        with self._lock:
            self._items[key] = tuple(passages)
            self._items.move_to_end(key)
            while len(self._items) > self.size:
                self._items.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self.hits = self.misses = 0


search_cache = RuntimeEntry("knowledge.search_cache", lambda: SearchCache(settings.KB_SEARCH_CACHE))
