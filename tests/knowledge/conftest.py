"""Fixtures of the knowledge base tests: real Postgres, the real MiniLM model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from apps.knowledge.models import KnowledgeBase
from apps.knowledge.services import knowledge_base_get_or_create


@pytest.fixture
def kb(db) -> KnowledgeBase:
    return knowledge_base_get_or_create(slug="test-kb")


@pytest.fixture
def beir_folder(tmp_path: Path) -> Path:
    """A tiny BEIR folder: three documents, three queries, one relevant document each."""
    corpus = [
        {
            "_id": "d1",
            "title": "Resetting a router",
            "text": "Hold the reset button on the back of the "
            "router for ten seconds until the lights blink. The router restarts with factory settings.",
        },
        {
            "_id": "d2",
            "title": "Baking sourdough bread",
            "text": "Feed the starter the night before, mix "
            "flour, water and salt, let the dough rise, then bake it in a hot oven for forty minutes.",
        },
        {
            "_id": "d3",
            "title": "Changing a bicycle tyre",
            "text": "Remove the wheel, lever the tyre off the "
            "rim, replace the inner tube, and pump it up to the pressure printed on the tyre wall.",
        },
    ]
    queries = [
        {"_id": "q1", "text": "how do I factory reset my router"},
        {"_id": "q2", "text": "how long to bake sourdough"},
        {"_id": "q3", "text": "fix a flat bike tyre inner tube"},
        {"_id": "q4", "text": "a query without a qrel is not run"},
    ]
    (tmp_path / "qrels").mkdir()
    (tmp_path / "corpus.jsonl").write_text("\n".join(json.dumps(r) for r in corpus) + "\n")
    (tmp_path / "queries.jsonl").write_text("\n".join(json.dumps(r) for r in queries) + "\n")
    (tmp_path / "qrels" / "test.tsv").write_text(
        "query-id\tcorpus-id\tscore\nq1\td1\t1\nq2\td2\t1\nq3\td3\t1\n"
    )
    return tmp_path
