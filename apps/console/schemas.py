"""Client frames of /ws/agent/ (PROTOCOL.md §3), validated by the socket runtime with the chat
socket's rules (apps/realtime/schemas.py): same framing, same error codes, same field checks."""

from __future__ import annotations

from typing import Any

from apps.realtime.schemas import MAX_INT, Schemas, _any, _bool, _int_between, _text, _uuid


def _agent_id(value: Any) -> int:
    if type(value) is not int or not 1 <= value <= MAX_INT:
        raise ValueError("must be an agent's id (a positive integer)")
    return value


_CONVERSATION = {"conversation_id": (_uuid, True)}
SCHEMAS: Schemas = {
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
# Frames that carry a client_msg_id the error should echo (and that count as messages).
WITH_CLIENT_MSG_ID = frozenset({"reply", "note"})
