"""Per-socket limits of PROTOCOL.md §2: frame size, rate, and the bad-frame budget."""

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
# Token buckets: (burst, sustained per second). Generous for people, tight for scripts.
MESSAGE_RATE = (10, 0.5)
FRAME_RATE = (60, 10.0)
# Errors a client causes; enough of them within the window closes the socket (chat and console).
COUNTED_ERRORS = frozenset(
    {"bad_json", "too_large", "unknown_type", "invalid", "unauthenticated", "forbidden", "not_found",
     "rate_limited"}
)
# Postgres or Redis away: the client should retry (`unavailable`), not report a bug (`internal`).
OUTAGES = (OperationalError, InterfaceError, RedisConnectionError, RedisTimeoutError)


class TokenBucket:
    __slots__ = ("capacity", "rate", "tokens", "stamp")

    def __init__(self, capacity: int, rate: float) -> None:
        self.capacity, self.rate = capacity, rate
        self.tokens = float(capacity)
        self.stamp = time.monotonic()

    def take(self) -> bool:
        """Spend one token if there is one."""
        now = time.monotonic()
        self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True


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
