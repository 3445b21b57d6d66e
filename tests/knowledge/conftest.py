"""Fixtures of the knowledge base tests: real Postgres, the real MiniLM model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from apps.knowledge.models import KnowledgeBase
from apps.knowledge.services import knowledge_base_get_or_create


def make_pdf(*lines: str) -> bytes:
    """A minimal valid one-page PDF showing `lines` in Helvetica (pypdf can read, not write, text)."""
    text = " T* ".join(f"({line})Tj" for line in lines)
    stream = f"BT /F1 12 Tf 14 TL 72 720 Td {text} ET".encode()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


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
