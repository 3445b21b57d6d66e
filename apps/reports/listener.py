"""Keeping the facts current: the publisher hands this listener every committed event that
outgoing webhooks hear of (a message, a handoff, a close, a rating, a thumbs up/down, a new
assignee), and the facts of the conversations they name are recomputed: with the process's
next batch, a moment later (apps/reports/pending.py), or at once when REPORTS_REFRESH_DELAY_S is 0.

It runs after the commit, off the chat socket's event loop (the publisher defers it past the
client's ack), and a failure loses nothing for good: the sweep and the nightly rebuild
(apps/reports/tasks.py) recompute from the conversations themselves.
"""

from __future__ import annotations

import logging

from apps.conversations.publisher import Published

from .pending import facts_mark

logger = logging.getLogger(__name__)

# Events that change no figure: the stream of an answer, a tool's progress.
_IGNORED = frozenset({"message_end", "tool", "token", "partial", "typing"})


def facts_listen(batch: list[Published]) -> None:
    ids = {item.conversation_id for item in batch if item.wire.get("type") not in _IGNORED}
    if ids:
        facts_mark(ids)
