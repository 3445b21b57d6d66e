"""A streamed Chat Completion read straight off aiohttp, as server-sent events.

The `openai` SDK reads a stream through an httpx-shaped wrapper over aiohttp (its
`DefaultAioHttpClient`), a line decoder and an event object per chunk: 51 µs of the web
process's CPU per streamed chunk, against 27 µs read here (both measured with 100 streams at
once), and a request through the SDK's client cost about 1.5 ms before its first byte while
200 answers started together (py-spy). A web process streams thousands of chunks a second, so
the answer's stream is read here; the judge's one non-streamed call stays with the SDK.

What the SDK did for a stream is kept: a connection error, a timeout before the reply, and a
408, 409, 429 or 5xx reply are retried (`attempts` in all) after 0.5 s, 1 s, ... (at most 8 s),
or after the reply's Retry-After when it asks for at most a minute; any other refusal is not.
An `error` event inside the stream ends it, as does an event over MAX_EVENT_BYTES. Each failure
is a `ProviderUnavailable` that says what the server answered.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
from collections.abc import AsyncIterator
from email.utils import parsedate_to_datetime
from typing import Any

import aiohttp
from django.utils import timezone

from apps.core.runtime import runtime

from .base import ProviderUnavailable

logger = logging.getLogger(__name__)

RETRY_STATUSES = frozenset({408, 409, 429})  # and every 5xx
INITIAL_DELAY_S = 0.5
MAX_DELAY_S = 8.0
RETRY_AFTER_MAX_S = 60.0
# One event's bytes at most: a server that never ends an event (a broken proxy, a hostile
# endpoint) ends the answer instead of growing the web process's memory.
MAX_EVENT_BYTES = 1_000_000


def _session(timeout_s: float) -> aiohttp.ClientSession:
    """The calling loop's session (its pool of keep-alive connections), closed with the loop."""

    def make() -> aiohttp.ClientSession:
        return aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=1000, keepalive_timeout=60),
            # As the SDK's timeout: to connect, and between two reads of the stream, not in all.
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=timeout_s, sock_read=timeout_s),
        )

    return runtime().loop_get(f"openai.stream_session|{timeout_s}", make, close=lambda s: s.close())


async def completion_chunks(
    url: str, api_key: str, body: dict[str, Any], *, attempts: int, timeout_s: float
) -> AsyncIterator[dict[str, Any]]:
    """The chunks (dicts) of one streamed completion from `url` (the API's base URL)."""
    response = await _reply(url, api_key, body, attempts=attempts, timeout_s=timeout_s)
    async with response:
        try:
            async for event in _events(response):
                if isinstance(event, dict) and event.get("error"):
                    raise ProviderUnavailable(f"{url} failed mid-answer: {_error_text(event)}")
                yield event
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise ProviderUnavailable(f"{url} broke off the answer: {exc!r}") from None


async def _reply(
    url: str, api_key: str, body: dict[str, Any], *, attempts: int, timeout_s: float
) -> aiohttp.ClientResponse:
    """The stream's response once it is 2xx, after the retries the failures allow."""
    data = json.dumps(body, ensure_ascii=False).encode()
    headers = {"Authorization": f"Bearer {api_key}", "Content-Type": "application/json",
               "Accept": "text/event-stream"}
    session = _session(timeout_s)
    for attempt in range(1, attempts + 1):
        last = attempt == attempts
        try:
            response = await session.post(f"{url}/chat/completions", data=data, headers=headers)
        except (TimeoutError, aiohttp.ClientError) as exc:
            if last:
                raise ProviderUnavailable(f"cannot reach {url}: {exc!r}") from None
            await asyncio.sleep(_backoff(attempt, None))
            continue
        if response.status < 400:
            return response
        async with response:
            text = await response.text(errors="replace")
        if last or not (response.status in RETRY_STATUSES or response.status >= 500):
            raise ProviderUnavailable(f"{url} answered {response.status}: {_error_text(text)[:300]}")
        logger.info("%s answered %s: retrying (attempt %d of %d)", url, response.status, attempt, attempts)
        await asyncio.sleep(_backoff(attempt, response.headers))
    raise AssertionError("unreachable")  # the last attempt returned or raised


async def _events(response: aiohttp.ClientResponse) -> AsyncIterator[Any]:
    """The JSON data of each server-sent event, until `[DONE]` or the end of the body."""
    buffer = b""
    async for data in response.content.iter_any():
        buffer += data.replace(b"\r\n", b"\n") if b"\r" in data else data
        *events, buffer = buffer.split(b"\n\n")
        if len(buffer) > MAX_EVENT_BYTES:
            raise ProviderUnavailable(f"an event of the model's stream passed {MAX_EVENT_BYTES:,} bytes")
        for event in events:
            payload = _data_of(event)
            if payload is None:
                continue
            if payload == b"[DONE]":
                return
            yield _json_of(payload)
    payload = _data_of(buffer)  # a last event without its blank line
    if payload is not None and payload != b"[DONE]":
        yield _json_of(payload)


def _json_of(payload: bytes) -> Any:
    try:
        return json.loads(payload)
    except ValueError:
        raise ProviderUnavailable(
            f"the model's stream sent an event that is not JSON: {payload[:100]!r}"
        ) from None


def _data_of(event: bytes) -> bytes | None:
    """An event's `data` (its lines joined), or None for a comment or an event without data."""
    if event.startswith(b"data: ") and b"\n" not in event:  # the usual case: one data line
        return event[6:]
    lines = [line[5:].removeprefix(b" ") for line in event.split(b"\n") if line.startswith(b"data:")]
    return b"\n".join(lines) if lines else None


def _error_text(error: Any) -> str:
    """The message of an error reply or event (`{"error": {"message": ...}}`), or its text."""
    if isinstance(error, str):
        try:
            error = json.loads(error)
        except ValueError:
            return error
    inner = error.get("error") if isinstance(error, dict) else None
    if isinstance(inner, dict) and isinstance(inner.get("message"), str):
        return inner["message"]
    return str(inner if inner is not None else error)


def _backoff(attempt: int, headers: Any) -> float:
    """Seconds before attempt + 1: what Retry-After asks (up to a minute), else exponential."""
    asked = _retry_after(headers) if headers is not None else None
    if asked is not None and 0 <= asked <= RETRY_AFTER_MAX_S:
        return asked
    return min(INITIAL_DELAY_S * 2 ** (attempt - 1), MAX_DELAY_S) * (1 - 0.25 * random.random())


def _retry_after(headers: Any) -> float | None:
    if (millis := headers.get("retry-after-ms")) is not None:
        try:
            return float(millis) / 1000
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        try:
            return (parsedate_to_datetime(value) - timezone.now()).total_seconds()
        except (TypeError, ValueError):
            return None
