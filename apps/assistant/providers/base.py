"""What an answer generator is: an async stream of text deltas plus the citations they use."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True)
class Turn:
    """What a provider answers: the customer's question and the conversation so far."""

    conversation_id: str
    question: str
    history: list[dict[str, str]] = field(default_factory=list)  # [{"role": ..., "text": ...}], oldest first


@dataclass(frozen=True)
class AnswerChunk:
    text: str = ""  # a delta to append to the answer
    citations: list[dict[str, Any]] | None = None  # when set: the answer's whole citation list


class Provider(Protocol):
    name: str

    def answer(self, turn: Turn) -> AsyncIterator[AnswerChunk]:
        """Stream the answer. Cancellation (a `stop`) may arrive at any await."""
        ...


class ProviderUnavailable(Exception):
    """The configured provider cannot answer (not configured, not implemented, unreachable)."""
