"""The web process loads the embedding model and its knowledge bases' label vectors at start,
so no customer waits for them."""

import time

import pytest

from apps.knowledge.ingestion import documents_index_inline
from apps.knowledge.services import document_upsert, knowledge_base_get_or_create

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

LOADED = "Loading embedding model all-MiniLM-L6-v2"
ARTICLE = b"""# Returns

You can return shoes within 30 days of delivery. The shoes must be unworn and in their box.

## Refunds

We refund the price to your card within five working days of receiving the parcel.
"""


def log_shows(server, text, within_s=90.0):
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        if text in server.log.read_text():
            return True
        time.sleep(0.5)
    return False


def test_the_web_server_loads_the_model_and_the_labels_before_any_question(web_server):
    kb = knowledge_base_get_or_create(slug="warm-help")
    doc, _ = document_upsert(kb=kb, external_id="returns.md", filename="returns.md", data=ARTICLE)
    documents_index_inline([doc])

    server = web_server(EMBEDDING_WARM_UP="true", LOG_LEVEL="INFO")
    assert log_shows(server, LOADED)  # nothing was asked: only the warm-up loads it
    assert log_shows(server, "warmed up knowledge base warm-help:")
    log = server.log.read_text()
    assert "loading the embedding model failed" not in log
    assert "warming up the knowledge bases failed" not in log
