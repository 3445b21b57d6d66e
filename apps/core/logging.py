"""Structured logs: every record carries the request id and conversation id known where it was
logged. The ids live in a contextvar, so they follow a request (or a socket's handler) through
`await`s and `sync_to_async` threads without being passed around.

    with log_context(conversation_id=str(conversation.pk)):
        ...   # every log line in here has "conversation_id"
"""

from __future__ import annotations

import contextvars
import logging
import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction

_context: contextvars.ContextVar[dict[str, Any]] = contextvars.ContextVar("kefu_log_context", default={})  # noqa: B039
# Fields every JSON line has (null when unknown), so log queries need no existence checks.
CONTEXT_FIELDS = ("request_id", "conversation_id")
_SAFE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")


@contextmanager
def log_context(**fields: Any) -> Iterator[None]:
    """Add fields (request_id, conversation_id, customer_id, ...) to every record logged inside."""
    token = _context.set({**_context.get(), **fields})
    try:
        yield
    finally:
        _context.reset(token)


def log_context_get() -> dict[str, Any]:
    return dict(_context.get())


class ContextFilter(logging.Filter):
    """Copies the current log context onto each record (attached to handlers, so records of
    every logger get it)."""

    def filter(self, record: logging.LogRecord) -> bool:
        context = _context.get()
        for field in CONTEXT_FIELDS:
            setattr(record, field, context.get(field))
        for field, value in context.items():
            if not hasattr(record, field):
                setattr(record, field, value)
        return True


def logging_config(*, fmt: str, level: str) -> dict[str, Any]:
    """Django LOGGING for LOG_FORMAT `json` (one JSON object per line) or `plain`."""
    formatters = {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"},
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "fmt": "%(asctime)s %(levelname)s %(name)s %(message)s",
            "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
            "static_fields": {"service": "kefu"},
        },
    }
    if fmt not in formatters:
        raise ValueError(f"LOG_FORMAT must be 'json' or 'plain', not {fmt!r}")
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"context": {"()": "apps.core.logging.ContextFilter"}},
        "formatters": {fmt: formatters[fmt]},
        "handlers": {"console": {"class": "logging.StreamHandler", "formatter": fmt, "filters": ["context"]}},
        "root": {"handlers": ["console"], "level": level},
        "loggers": {"django.channels.server": {"level": "WARNING"}},
    }


class RequestIdMiddleware:
    """Gives each HTTP request an id (the proxy's X-Request-ID when it is sane, else a new one),
    logs with it, and returns it in the X-Request-ID response header."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response):
        self.get_response = get_response
        if iscoroutinefunction(get_response):
            markcoroutinefunction(self)

    @staticmethod
    def _request_id(request) -> str:
        given = request.headers.get("X-Request-ID", "")
        return given if _SAFE_REQUEST_ID.match(given) else uuid.uuid4().hex

    def __call__(self, request):
        if iscoroutinefunction(self):
            return self.__acall__(request)
        request_id = self._request_id(request)
        with log_context(request_id=request_id):
            response = self.get_response(request)
        response["X-Request-ID"] = request_id
        return response

    async def __acall__(self, request):
        request_id = self._request_id(request)
        # Not reset on the way out: Django's ASGI handler runs each request in its own task (its own
        # context copy), and its "Bad Request"/"Too Many Requests" lines are logged after the
        # middleware returns; they should carry the id too.
        _context.set({**_context.get(), "request_id": request_id})
        response = await self.get_response(request)
        response["X-Request-ID"] = request_id
        return response
