"""Per-socket limits of PROTOCOL.md §2 and §3: frame size, the auth deadline and the bad-frame
budget. Frame and message rates are named limits of apps/core/ratelimit.py (SOCKET_LIMITS)."""

from __future__ import annotations

import time
from collections import deque

from django.db import InterfaceError, OperationalError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

MAX_FRAME_BYTES = 64 * 1024
# Frames over 1 MiB never reach a consumer: the web server closes with 1009 on the frame's header
# (uvicorn --ws-max-size 1048576 in the Procfile; Daphne's --websocket-max-frame-size, see
# daphne_close_codes.py). Between the two a frame is read, then answered with `too_large`.
AUTH_TIMEOUT_S = 10.0

# A socket sending this many bad frames within the window is closed with 1008.
BAD_FRAMES_LIMIT = 20
BAD_FRAMES_WINDOW_S = 60.0
# Errors a client causes; enough of them within the window closes the socket (chat and console).
COUNTED_ERRORS = frozenset(
    {"bad_json", "too_large", "unknown_type", "invalid", "unauthenticated", "forbidden", "not_found",
     "rate_limited"}
)
# Postgres or Redis away: the client should retry (`unavailable`), not report a bug (`internal`).
OUTAGES = (OperationalError, InterfaceError, RedisConnectionError, RedisTimeoutError)


class BadFrameWindow:
    """Counts bad frames in a sliding window; `add()` says whether the budget is spent."""

    __slots__ = ("stamps",)

    def __init__(self) -> None:
        self.stamps: deque[float] = deque()

    def add(self) -> bool:
        now = time.monotonic()
        self.stamps.append(now)
        while self.stamps and self.stamps[0] <= now - BAD_FRAMES_WINDOW_S:
            self.stamps.popleft()
        return len(self.stamps) >= BAD_FRAMES_LIMIT
