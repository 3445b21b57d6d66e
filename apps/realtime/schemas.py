"""Client frames of PROTOCOL.md §2: parse and validate, or say exactly what is wrong."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from .limits import MAX_FRAME_BYTES

MAX_TEXT = 4000
MAX_COMMENT = 2000
MAX_FEEDBACK_COMMENT = 1000
# Integers are stored in 64-bit columns (seq, ids): larger ones are a bad field, not a crash.
MAX_INT = 2**63 - 1
# JSON nesting a frame may have: deeper ones would blow the parser's (or the echo's) recursion.
MAX_DEPTH = 32


class FrameError(Exception):
    """A bad frame: answered with `error` `code` (the socket stays open)."""

    def __init__(self, code: str, message: str, client_msg_id: str | None = None) -> None:
        super().__init__(message)
        self.code, self.message, self.client_msg_id = code, message, client_msg_id


@dataclass(frozen=True)
class Frame:
    type: str
    fields: dict[str, Any] = field(default_factory=dict)

    def __getattr__(self, name: str) -> Any:
        try:
            return self.fields[name]
        except KeyError:
            raise AttributeError(name) from None


_MISSING = object()


def _uuid(value: Any) -> UUID:
    try:
        return UUID(value)
    except (TypeError, ValueError, AttributeError):
        raise ValueError("must be a UUID string") from None


def _int_between(low: int, high: int | None) -> Callable[[Any], int]:
    def check(value: Any) -> int:
        if type(value) is not int or value < low or value > (MAX_INT if high is None else high):
            raise ValueError(
                f"must be an integer from {low}" + (f" to {high}" if high is not None else " up")
            )
        return value

    return check


def _storable(value: str) -> bool:
    """Postgres text takes neither NUL nor a lone surrogate (which JSON's \\ud800 escapes make)."""
    if "\x00" in value:
        return False
    try:
        value.encode()
    except UnicodeEncodeError:
        return False
    return True


def _text(value: Any) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_TEXT:
        raise ValueError(f"must be a string of 1 to {MAX_TEXT} characters, not only spaces")
    if not _storable(value):
        raise ValueError("must be text without NUL characters or unpaired surrogates")
    return value


def _str_upto(limit: int, *, empty: bool, stored: bool = True) -> Callable[[Any], str]:
    def check(value: Any) -> str:
        if not isinstance(value, str) or len(value) > limit or (not empty and not value):
            raise ValueError(f"must be a string of at most {limit} characters")
        if stored and not _storable(value):
            raise ValueError("must be text without NUL characters or unpaired surrogates")
        return value

    return check


def _bool(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError("must be true or false")
    return value


def _any(value: Any) -> Any:
    return value


def _team_slug(value: Any) -> str | None:
    # The host page's `team` setting: anything unusable routes nowhere instead of failing `auth`.
    return value if isinstance(value, str) and 0 < len(value) <= 50 else None


def _language_tag(value: Any) -> str:
    # Unusable tags are ignored (the language is then detected), never a failed `auth`.
    return value if isinstance(value, str) and len(value) <= 35 else ""


def _lenient_bool(value: Any) -> bool:
    return value is True


# type -> {field: (validator, required)}; fields not listed are ignored (forward compatible).
Schemas = dict[str, dict[str, tuple[Callable[[Any], Any], bool]]]
SCHEMAS: Schemas = {
    # Any string: a wrong one closes the socket with 4401, like a forged one.
    "auth": {
        "token": (_str_upto(MAX_FRAME_BYTES, empty=True, stored=False), True),
        "team": (_team_slug, False),  # the widget's `team` setting: routes the conversations it starts
        # The host page's language (BCP 47): fills in until the customer's messages show theirs;
        # with `language_fixed`, the page's setting always wins (apps/conversations/language.py).
        "language": (_language_tag, False),
        "language_fixed": (_lenient_bool, False),
    },
    "resume": {"conversation_id": (_uuid, True), "last_seq": (_int_between(0, None), True)},
    "message": {
        "client_msg_id": (_uuid, True),
        "text": (_text, True),
        "conversation_id": (_uuid, False),
    },
    "stop": {"conversation_id": (_uuid, True)},
    "request_human": {"conversation_id": (_uuid, True)},
    "typing": {"conversation_id": (_uuid, True), "on": (_bool, True)},
    "ping": {"ts": (_any, False)},
    "csat": {
        "conversation_id": (_uuid, True),
        "score": (_int_between(1, 5), True),
        "comment": (_str_upto(MAX_COMMENT, empty=True), False),
    },
    "tool_confirm": {
        "conversation_id": (_uuid, True),
        "call_id": (_uuid, True),
        "approve": (_bool, True),
    },
    "feedback": {
        "conversation_id": (_uuid, True),
        "message_id": (_uuid, True),
        "helpful": (_bool, True),
        "comment": (_str_upto(MAX_FEEDBACK_COMMENT, empty=True), False),
    },
}


def _too_deep(value: Any) -> bool:
    level = [value]
    for _ in range(MAX_DEPTH):
        level = [
            child
            for node in level if isinstance(node, (dict, list))
            for child in (node.values() if isinstance(node, dict) else node)
        ]
        if not level:
            return False
    return any(isinstance(node, (dict, list)) for node in level)


def frame_parse(
    text: str | None,
    data: bytes | None,
    *,
    schemas: Schemas = SCHEMAS,
    echoing_client_msg_id: frozenset[str] = frozenset({"message"}),
) -> Frame:
    """The validated frame, or FrameError with the PROTOCOL.md error code. `schemas` are a
    socket's frame types (the chat socket's by default; the console passes its own); errors
    about a frame of a type in `echoing_client_msg_id` carry its `client_msg_id`."""
    if text is None:
        raise FrameError("bad_json", "Binary frames are not accepted; send JSON text frames.")
    if len(text) > MAX_FRAME_BYTES // 4 and len(text.encode()) > MAX_FRAME_BYTES:
        raise FrameError("too_large", f"Frames are limited to {MAX_FRAME_BYTES} bytes.")
    try:
        raw = json.loads(text)
    except ValueError:
        raise FrameError("bad_json", "The frame is not valid JSON.") from None
    except RecursionError:
        raise FrameError("bad_json", f"The frame nests deeper than {MAX_DEPTH} levels.") from None
    if not isinstance(raw, dict):
        raise FrameError("bad_json", "A frame must be a JSON object with a `type`.")
    if _too_deep(raw):
        raise FrameError("bad_json", f"The frame nests deeper than {MAX_DEPTH} levels.")
    kind = raw.get("type")
    cmid = raw.get("client_msg_id")
    cmid = cmid if kind in echoing_client_msg_id and isinstance(cmid, str) else None
    schema = schemas.get(kind) if isinstance(kind, str) else None
    if schema is None:
        known = ", ".join(schemas)
        raise FrameError("unknown_type", f"Unknown frame type {kind!r}; known types: {known}.", cmid)
    fields: dict[str, Any] = {}
    for name, (check, required) in schema.items():
        value = raw.get(name, _MISSING)
        if value is _MISSING or (value is None and not required):
            if required:
                raise FrameError("invalid", f"`{kind}` needs `{name}`.", cmid)
            fields[name] = None
            continue
        try:
            fields[name] = check(value)
        except ValueError as exc:
            raise FrameError("invalid", f"`{name}` {exc}.", cmid) from None
    return Frame(kind, fields)
