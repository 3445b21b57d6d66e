"""The web process loads the embedding model at start, so no customer waits for it."""

import time

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

LOADED = "Loading embedding model all-MiniLM-L6-v2"


def log_shows(server, text, within_s=90.0):
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        if text in server.log.read_text():
            return True
        time.sleep(0.5)
    return False


def test_the_web_server_loads_the_model_before_any_question(web_server):
    server = web_server(EMBEDDING_WARM_UP="true", LOG_LEVEL="INFO")
    assert log_shows(server, LOADED)  # nothing was asked: only the warm-up loads it
    assert "loading the embedding model failed" not in server.log.read_text()

