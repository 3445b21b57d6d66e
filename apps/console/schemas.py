"""Client frames of /ws/agent/ (PROTOCOL.md §3), validated with the chat socket's rules
(apps/realtime/schemas.py): same framing, same error codes, same field checks."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from apps.realtime.limits import MAX_FRAME_BYTES
from apps.realtime.schemas import Frame, FrameError, _any, _bool, _int_between, _text, _uuid

_MISSING = object()


def _agent_id(value: Any) -> int:
    if type(value) is not int or value < 1:
        raise ValueError("must be an agent's id (a positive integer)")
    return value


_CONVERSATION = {"conversation_id": (_uuid, True)}
SCHEMAS: dict[str, dict[str, tuple[Callable[[Any], Any], bool]]] = {
    "subscribe": {**_CONVERSATION, "last_seq": (_int_between(0, None), True)},
    "unsubscribe": _CONVERSATION,
    "claim": _CONVERSATION,
    "assign": {**_CONVERSATION, "agent_id": (_agent_id, True)},
    "reply": {**_CONVERSATION, "client_msg_id": (_uuid, True), "text": (_text, True)},
    "note": {**_CONVERSATION, "client_msg_id": (_uuid, True), "text": (_text, True)},
    "release": _CONVERSATION,
    "close": _CONVERSATION,
    "typing": {**_CONVERSATION, "on": (_bool, True)},
    "ping": {"ts": (_any, False)},
}
# Frames that carry a client_msg_id the error should echo.
_WITH_CLIENT_MSG_ID = frozenset({"reply", "note"})


def frame_parse(text: str | None, data: bytes | None) -> Frame:
    """The validated frame, or FrameError with the PROTOCOL.md error code."""
    if text is None:
        raise FrameError("bad_json", "Binary frames are not accepted; send JSON text frames.")
    if len(text) > MAX_FRAME_BYTES // 4 and len(text.encode()) > MAX_FRAME_BYTES:
        raise FrameError("too_large", f"Frames are limited to {MAX_FRAME_BYTES} bytes.")
    try:
        raw = json.loads(text)
    except ValueError:
        raise FrameError("bad_json", "The frame is not valid JSON.") from None
    if not isinstance(raw, dict):
        raise FrameError("bad_json", "A frame must be a JSON object with a `type`.")
    kind = raw.get("type")
    cmid = raw.get("client_msg_id")
    cmid = cmid if kind in _WITH_CLIENT_MSG_ID and isinstance(cmid, str) else None
    schema = SCHEMAS.get(kind) if isinstance(kind, str) else None
    if schema is None:
        raise FrameError(
            "unknown_type", f"Unknown frame type {kind!r}; known types: {', '.join(SCHEMAS)}.", cmid
        )
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
