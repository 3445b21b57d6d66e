"""Property-based fuzzing of /ws/chat/ frames through the real consumer (PROTOCOL.md §2).

Two customers, each on their own socket, send random frames at the same time: random JSON
values, known types with random, missing or wrong fields, oversized and binary frames,
interleaved with valid ones (some naming their own conversation, some the other customer's).
Whatever arrives: never an `internal` error, the socket stays open unless the documented 1008
closes it after 20 counted bad frames, and no event of one customer ever names a conversation
of the other.
"""

from __future__ import annotations

import asyncio
import json
import os
import uuid
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import event as note_event
from hypothesis import strategies as st

from apps.realtime.consumers import CLOSE_POLICY, COUNTED_ERRORS
from apps.realtime.limits import BAD_FRAMES_LIMIT, MAX_FRAME_BYTES

pytestmark = pytest.mark.django_db(transaction=True)

# Placeholders the test replaces when it sends the frame: the sender's own conversation (the
# one it has when it started), the other customer's, or one nobody has.
OWN, OTHER = "<own-conversation>", "<other-conversation>"

json_scalars = (
    st.none() | st.booleans() | st.integers(-(2**40), 2**40) | st.floats(allow_nan=False)
    | st.text(max_size=20)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
conversation_refs = st.sampled_from([OWN, OTHER]) | st.uuids().map(str) | json_values
# Short texts from a small alphabet: no order number or tracking words that route to a tool.
texts = st.text(alphabet="abc xyz?", min_size=1, max_size=30)

FIELDS: dict[str, dict[str, st.SearchStrategy]] = {
    "auth": {"token": st.text(max_size=30) | json_values},
    "resume": {"conversation_id": conversation_refs, "last_seq": st.integers(-2, 5) | json_values},
    "message": {
        "client_msg_id": st.uuids().map(str) | json_values,
        "text": texts | json_values | st.just(" ") | st.just("x" * 4001),
        "conversation_id": conversation_refs,
    },
    "stop": {"conversation_id": conversation_refs},
    "request_human": {"conversation_id": conversation_refs},
    "typing": {"conversation_id": conversation_refs, "on": st.booleans() | json_values},
    "ping": {"ts": json_values},
    "csat": {
        "conversation_id": conversation_refs,
        "score": st.integers(0, 6) | json_values,
        "comment": st.text(max_size=20) | json_values,
    },
    "tool_confirm": {
        "conversation_id": conversation_refs,
        "call_id": st.text(max_size=10) | json_values,
        "approve": st.booleans() | json_values,
    },
}


@st.composite
def known_type_frames(draw) -> dict[str, Any]:
    """A known type with each field present (random or wrong value) or missing."""
    kind = draw(st.sampled_from(sorted(FIELDS)))
    frame: dict[str, Any] = {"type": kind}
    for name, values in FIELDS[kind].items():
        if draw(st.integers(0, 4)):  # mostly present
            frame[name] = draw(values)
    return frame


def valid_frames() -> st.SearchStrategy[dict[str, Any]]:
    return st.one_of(
        st.builds(lambda t: {"type": "message", "client_msg_id": str(uuid.uuid4()), "text": t}, texts),
        st.builds(
            lambda t: {"type": "message", "client_msg_id": str(uuid.uuid4()), "text": t,
                       "conversation_id": OWN},
            texts,
        ),
        st.just({"type": "resume", "conversation_id": OWN, "last_seq": 0}),
        st.just({"type": "stop", "conversation_id": OWN}),
        st.builds(lambda on: {"type": "typing", "conversation_id": OWN, "on": on}, st.booleans()),
        st.just({"type": "ping", "ts": 1}),
    )


# A frame is ("json", value), ("raw", text), ("binary", bytes), or ("flood", n): n invalid JSON
# frames in a row, enough to spend the bad-frame budget (the documented 1008 close).
frames = st.one_of(
    st.integers(BAD_FRAMES_LIMIT - 5, BAD_FRAMES_LIMIT + 3).map(lambda n: ("flood", n)),
    valid_frames().map(lambda f: ("json", f)),
    known_type_frames().map(lambda f: ("json", f)),
    json_values.map(lambda v: ("json", v)),
    st.dictionaries(st.text(max_size=8), json_values, max_size=3).map(
        lambda d: ("json", {**d, "type": "dance"})
    ),
    st.text(max_size=40).map(lambda t: ("raw", t)),
    st.binary(max_size=40).map(lambda b: ("binary", b)),
    st.integers(1, 64).map(
        lambda k: ("raw", json.dumps({"type": "ping", "ts": "x" * (MAX_FRAME_BYTES + k)}))
    ),
)


def _substitute(value: Any, own: str, other: str) -> Any:
    if value == OWN:
        return own
    if value == OTHER:
        return other
    if isinstance(value, dict):
        return {k: _substitute(v, own, other) for k, v in value.items()}
    if isinstance(value, list):
        return [_substitute(v, own, other) for v in value]
    return value


def _leaks(events: list[dict[str, Any]], conversations: set[str]) -> list[dict[str, Any]]:
    """Events that mention any of these conversation ids anywhere (as a field or inside text)."""
    return [e for e in events if any(c in json.dumps(e) for c in conversations)]


class Session:
    """One customer's socket during an example: what it sent and what it saw."""

    def __init__(self, socket, own: str) -> None:
        self.socket, self.own = socket, own
        self.events: list[dict[str, Any]] = []
        self.closed_with: int | None = None

    async def send(self, frame: tuple[str, Any], other: str) -> None:
        kind, value = frame
        if kind == "flood":
            for _ in range(value):
                await self.socket.comm.send_input({"type": "websocket.receive", "text": "{nope"})
            return
        if kind == "binary":
            message = {"type": "websocket.receive", "bytes": value}
        elif kind == "raw":
            message = {"type": "websocket.receive", "text": value}
        else:
            message = {"type": "websocket.receive", "text": json.dumps(_substitute(value, self.own, other))}
        # Straight to the app: the communicator's send_to refuses empty frames, a browser does not.
        await self.socket.comm.send_input(message)

    async def drain(self, marker: str) -> None:
        """Read until the pong for `marker` (every frame before it was handled) or a close."""
        if self.closed_with is None:
            await self.socket.send({"type": "ping", "ts": marker})
        while self.closed_with is None:
            event = await self.socket.recv(timeout=20)
            if event["type"] == "websocket.close":
                self.closed_with = event.get("code")
                return
            self.events.append(event)
            if event == {"type": "pong", "ts": marker}:
                return

    def conversations(self) -> set[str]:
        found = {self.own}
        for event in self.events:
            if event["type"] in ("ack", "resumed") or "seq" in event:
                found.add(event["conversation_id"])
        return found


async def _first_conversation(socket) -> str:
    await socket.send({"type": "message", "client_msg_id": str(uuid.uuid4()), "text": "hello"})
    ack = await socket.recv()
    assert ack["type"] == "ack", ack
    await socket.recv_until("message_end")
    return ack["conversation_id"]


@pytest.fixture(autouse=True)
def _fast_answers(settings):
    settings.ASSISTANT_TOKEN_DELAY_S = 0


@settings(
    max_examples=int(os.environ.get("FUZZ_EXAMPLES", "30")),
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    frames_a=st.lists(frames, min_size=1, max_size=24),
    frames_b=st.lists(frames, min_size=1, max_size=24),
)
async def test_random_frames_never_fail_internally_nor_leak_between_customers(
    chat, customer, other_customer, frames_a, frames_b
):
    a_socket, b_socket = await chat(customer), await chat(other_customer)
    try:
        a = Session(a_socket, a_socket.ready["conversation_id"] or await _first_conversation(a_socket))
        b = Session(b_socket, b_socket.ready["conversation_id"] or await _first_conversation(b_socket))
        # Interleave both customers' frames, then read everything each socket answered.
        for i in range(max(len(frames_a), len(frames_b))):
            if i < len(frames_a):
                await a.send(frames_a[i], other=b.own)
            if i < len(frames_b):
                await b.send(frames_b[i], other=a.own)
        marker = str(uuid.uuid4())
        await asyncio.gather(a.drain(marker), b.drain(marker))

        for session in (a, b):
            errors = [e for e in session.events if e["type"] == "error"]
            assert [e for e in errors if e["code"] == "internal"] == []
            counted = sum(e["code"] in COUNTED_ERRORS for e in errors)
            if session.closed_with is None:
                assert counted < BAD_FRAMES_LIMIT
            else:  # only the documented close, exactly when the budget was spent
                assert (session.closed_with, counted) == (CLOSE_POLICY, BAD_FRAMES_LIMIT)
            note_event(f"socket closed with {session.closed_with}")  # --hypothesis-show-statistics
        # No conversation of one customer ever appears in the other's events.
        assert _leaks(a.events, b.conversations()) == []
        assert _leaks(b.events, a.conversations()) == []
    finally:
        await asyncio.gather(a_socket.close(), b_socket.close())
