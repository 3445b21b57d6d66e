"""The answer's stream as the `openai` provider reads it (completion_stream.py), against real
servers on loopback: the SDK's retries and refusals kept, server-sent events however a server
frames them, an error inside the stream, and a stopped answer closing the model's stream."""

import asyncio
import datetime
import email.utils
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from apps.assistant.grounding import Grounding
from apps.assistant.providers import ProviderUnavailable, Turn, provider_get
from apps.assistant.providers import openai as openai_provider
from apps.assistant.providers.completion_stream import _backoff, completion_chunks
from tests.support.fake_llm import FakeLLM
from tests.support.passages import passage

REFUNDS = passage("d1", "Refunds", "Refunds take 5 business days.")


@pytest.fixture
def llm(settings, monkeypatch):
    """The fake model, asked without the judge (the answer's stream is the first request)."""
    grounding = Grounding(decision="answer", passages=[REFUNDS], suggestions=[])
    async def fixed(question, **kw):
        return grounding

    monkeypatch.setattr(openai_provider, "aground", fixed)
    with FakeLLM() as fake:
        settings.LLM_PROVIDER, settings.LLM_BASE_URL = "openai", fake.url
        settings.LLM_MODEL, settings.LLM_API_KEY, settings.LLM_JUDGE = "kefu-test-model", "sk-test", False
        yield fake


def answer_text(question: str = "How long does a refund take?") -> str:
    async def collect() -> str:
        parts = []
        async for chunk in provider_get().answer(Turn(conversation_id="c", question=question)):
            parts.append(chunk.text or "")
        return "".join(parts)

    return asyncio.run(collect())


@pytest.fixture
def fast_retries(monkeypatch):
    monkeypatch.setattr("apps.assistant.providers.completion_stream.INITIAL_DELAY_S", 0.01)


@pytest.mark.django_db
def test_the_stream_is_retried_when_busy_or_failing_then_answers(llm, fast_retries):
    llm.statuses = [503, 429]
    llm.deltas = ["Refunds take ", "5 days [1]"]
    assert answer_text() == "Refunds take 5 days [1]"
    assert [r["body"]["stream"] for r in llm.requests] == [True, True, True]
    assert llm.requests[-1]["headers"]["Authorization"] == "Bearer sk-test"


@pytest.mark.django_db
def test_a_refused_stream_is_not_retried_and_says_what_the_server_said(llm):
    llm.statuses = [401]
    with pytest.raises(ProviderUnavailable, match="answered 401: status 401"):
        answer_text()
    assert len(llm.requests) == 1


@pytest.mark.django_db
def test_a_server_failing_every_attempt_is_given_up_after_three(llm, fast_retries):
    llm.statuses = [500, 502, 503, 504]
    with pytest.raises(ProviderUnavailable, match="answered 503"):
        answer_text()
    assert len(llm.requests) == 3


@pytest.mark.django_db
def test_a_server_nobody_listens_on_is_unreachable(llm, settings, fast_retries):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    settings.LLM_BASE_URL = f"http://127.0.0.1:{port}/v1"
    with pytest.raises(ProviderUnavailable, match="cannot reach"):
        answer_text()


class _Canned:
    """A server answering every POST with 200 and `body` as an event stream, slowly if told."""

    def __init__(self, body: bytes, *, pause_s: float = 0.0) -> None:
        canned = self
        self.body, self.pause_s, self.broken = body, pause_s, threading.Event()

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.end_headers()
                try:
                    for line in canned.body.splitlines(keepends=True):
                        self.wfile.write(line)
                        self.wfile.flush()
                        time.sleep(canned.pause_s)
                except (BrokenPipeError, ConnectionResetError):
                    canned.broken.set()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def chunks_of(url: str, *, limit: int | None = None) -> list:
    async def read() -> list:
        out = []
        stream = completion_chunks(url, "k", {"stream": True}, attempts=1, timeout_s=5)
        async for chunk in stream:
            out.append(chunk)
            if limit is not None and len(out) == limit:
                await stream.aclose()  # what a stopped answer does
                break
        return out

    return asyncio.run(read())


def test_events_are_read_however_the_server_frames_them():
    body = (
        b": a comment, then a keep-alive\r\n\r\n"
        b'data: {"n": 1}\r\n\r\n'
        b'event: message\ndata: {"n":\ndata: 2}\n\n'  # one event's data over two lines
        b'data:{"n": 3}\n\n'
        b'data: {"n": 4}'  # the last event without its blank line
    )
    server = _Canned(body)
    try:
        assert chunks_of(server.url) == [{"n": 1}, {"n": 2}, {"n": 3}, {"n": 4}]
    finally:
        server.close()


def test_the_stream_ends_at_done_whatever_follows():
    server = _Canned(b'data: {"n": 1}\n\ndata: [DONE]\n\ndata: {"n": 2}\n\n')
    try:
        assert chunks_of(server.url) == [{"n": 1}]
    finally:
        server.close()


def test_an_error_inside_the_stream_ends_the_answer_and_says_why():
    server = _Canned(b'data: {"n": 1}\n\ndata: {"error": {"message": "overloaded"}}\n\n')
    try:
        with pytest.raises(ProviderUnavailable, match="failed mid-answer: overloaded"):
            chunks_of(server.url)
    finally:
        server.close()


def test_a_stopped_answer_closes_the_models_stream():
    server = _Canned(b"".join(b'data: {"n": %d}\n\n' % n for n in range(200)), pause_s=0.02)
    try:
        assert chunks_of(server.url, limit=2) == [{"n": 0}, {"n": 1}]
        assert server.broken.wait(10)  # the model's server can no longer write: it stops
    finally:
        server.close()


@pytest.mark.parametrize(
    ("headers", "expected"),
    [({"retry-after": "2"}, 2.0), ({"retry-after-ms": "1500"}, 1.5), ({"retry-after": "0"}, 0.0)],
)
def test_a_retry_waits_as_long_as_the_server_asks(headers, expected):
    assert _backoff(1, headers) == expected


def test_a_retry_after_over_a_minute_or_unreadable_backs_off_exponentially():
    for headers in ({"retry-after": "3600"}, {"retry-after": "soon"}, {}):
        assert 0.375 <= _backoff(1, headers) <= 0.5
        assert 1.5 <= _backoff(3, headers) <= 2.0
    assert 6.0 <= _backoff(10, {}) <= 8.0  # capped


def test_an_event_that_never_ends_ends_the_answer_instead_of_filling_memory(monkeypatch):
    monkeypatch.setattr("apps.assistant.providers.completion_stream.MAX_EVENT_BYTES", 10_000)
    # One event, line after line, never the blank line that ends it: 80 KB in all.
    server = _Canned(b'data: {"n": 1}\n\n' + b"data: " + (b"y" * 400 + b"\n") * 200)
    try:
        with pytest.raises(ProviderUnavailable, match="passed 10,000 bytes"):
            chunks_of(server.url)
    finally:
        server.close()


def test_a_retry_after_given_as_a_date_waits_until_then():
    when = email.utils.format_datetime(datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=30),
                                       usegmt=True)
    assert 28 <= _backoff(1, {"retry-after": when}) <= 30


def test_an_event_that_is_not_json_ends_the_answer_and_says_so():
    server = _Canned(b'data: {"n": 1}\n\ndata: <html>502 Bad Gateway</html>\n\n')
    try:
        with pytest.raises(ProviderUnavailable, match="not JSON: b'<html>502"):
            chunks_of(server.url)
    finally:
        server.close()
