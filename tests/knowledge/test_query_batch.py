"""Query embeddings batched across concurrent callers (apps/knowledge/query_batch.py), on the real
local model: a counting wrapper around it records each model call, nothing stands in for its output."""

import threading

import numpy as np
import pytest

from apps.core.runtime import runtime
from apps.knowledge.embeddings import configured_embedder, embed_query, query_cache
from apps.knowledge.errors import EmbeddingError
from apps.knowledge.query_batch import QueryBatcher

QUESTIONS = [
    "I forgot my password, how do I reset it?",
    "Where is my parcel?",
    "Can I return a sofa after 30 days?",
    "refund",
    "How long does shipping to Canada take?",
    "Do you ship to Australia?",
]


class Counting:
    """The configured embedder, recording the texts of every model call."""

    def __init__(self, name: str = "counting") -> None:
        self.inner = configured_embedder()
        self.provider, self.model, self.dimensions = "test", name, self.inner.dimensions
        self.calls: list[list[str]] = []
        self._lock = threading.Lock()

    def embed(self, texts):
        with self._lock:
            self.calls.append(list(texts))
        return self.inner.embed(texts)


def _embed(embedder, texts):
    return embedder.embed(texts)


def _at_once(ask, texts):
    """`ask(text)` from one thread per text, all released together; the results in `texts` order."""
    results: list = [None] * len(texts)
    gate = threading.Barrier(len(texts))

    def one(i: int) -> None:
        gate.wait()
        try:
            results[i] = ask(texts[i])
        except Exception as exc:
            results[i] = exc

    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(texts))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return results


@pytest.fixture
def fresh(settings):
    """A batch is made when EMBEDDING_BATCH_MAX questions wait: the window is long enough that
    only that ends it (no timing in the tests)."""
    settings.EMBEDDING_BATCH_WINDOW_MS = 60_000
    runtime().forget("knowledge.query_batchers")
    query_cache.clear()
    yield settings
    runtime().forget("knowledge.query_batchers")
    query_cache.clear()


def test_concurrent_callers_get_their_own_rows_from_one_model_call():
    solo = Counting()
    expected = {q: solo.embed([q])[0] for q in QUESTIONS}  # one by one
    counting = Counting()
    batcher = QueryBatcher(counting, _embed, window_s=60, max_batch=len(QUESTIONS))

    results = _at_once(batcher.vector, QUESTIONS)

    assert len(counting.calls) == 1 and sorted(counting.calls[0]) == sorted(QUESTIONS)
    for question, row in zip(QUESTIONS, results, strict=True):
        assert np.array_equal(row, expected[question])


def test_the_same_question_asked_at_once_is_embedded_once():
    counting = Counting()
    asked = [QUESTIONS[0]] * 3 + [QUESTIONS[1]]
    batcher = QueryBatcher(counting, _embed, window_s=60, max_batch=2)  # two distinct texts fill it

    results = _at_once(batcher.vector, asked)

    assert len(counting.calls) == 1 and sorted(counting.calls[0]) == sorted(set(asked))
    assert all(np.array_equal(results[0], r) for r in results[:3])


def test_search_path_batches_and_caches(fresh):
    """embed_query (what search calls): concurrent misses share a call, a repeat is a cache hit."""
    fresh.EMBEDDING_BATCH_MAX = 4
    counting = Counting()
    expected = [counting.inner.embed([q])[0] for q in QUESTIONS[:4]]

    results = _at_once(lambda q: embed_query(counting, q), QUESTIONS[:4])
    again = embed_query(counting, QUESTIONS[2])

    assert len(counting.calls) == 1
    assert all(np.array_equal(r, e) for r, e in zip(results, expected, strict=True))
    assert np.array_equal(again, expected[2])
    assert (query_cache.misses, query_cache.hits) == (4, 1)


def test_batches_never_mix_embedders(fresh):
    fresh.EMBEDDING_BATCH_MAX = 2
    english, other = Counting("english"), Counting("other")
    asked = [(english, QUESTIONS[0]), (other, QUESTIONS[1]), (english, QUESTIONS[2]), (other, QUESTIONS[3])]

    _at_once(lambda pair: embed_query(*pair), asked)

    assert sorted(map(sorted, english.calls)) == [sorted([QUESTIONS[0], QUESTIONS[2]])]
    assert sorted(map(sorted, other.calls)) == [sorted([QUESTIONS[1], QUESTIONS[3]])]


def test_a_lone_question_with_no_window_goes_straight_to_the_model():
    counting = Counting()
    batcher = QueryBatcher(counting, _embed, window_s=0, max_batch=64)

    row = batcher.vector(QUESTIONS[0])

    assert counting.calls == [[QUESTIONS[0]]]
    assert np.array_equal(row, counting.inner.embed([QUESTIONS[0]])[0])


def test_a_model_failure_reaches_every_caller_of_the_batch_and_the_next_batch_runs():
    class Failing(Counting):
        def embed(self, texts):
            super().embed(texts)
            if len(self.calls) == 1:
                raise EmbeddingError("The embeddings endpoint failed (HTTP 503).")
            return self.inner.embed(texts)

    failing = Failing()
    batcher = QueryBatcher(failing, _embed, window_s=60, max_batch=2)

    first = _at_once(batcher.vector, QUESTIONS[:2])
    second = _at_once(batcher.vector, QUESTIONS[2:4])

    assert [type(r) for r in first] == [EmbeddingError, EmbeddingError]
    assert len(failing.calls) == 2
    alone = [failing.inner.embed([q])[0] for q in QUESTIONS[2:4]]
    assert all(np.array_equal(r, a) for r, a in zip(second, alone, strict=True))
