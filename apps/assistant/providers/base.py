"""What an answer generator is: an async stream of text deltas plus the citations they use,
and the tools it may call (`ToolBox`: a contract of the layer below, apps/connectors/contract.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from apps.connectors.contract import ToolBox, ToolOutcome

__all__ = ["OUTCOMES", "AnswerChunk", "Provider", "ProviderUnavailable", "ToolBox", "ToolOutcome", "Turn"]


@dataclass(frozen=True)
class Turn:
    """What a provider answers: the customer's question and the conversation so far.

    `tool_call_id` is set for the follow-up turn after the customer answered a confirmation:
    the provider calls `tools.resume(tool_call_id)` and reports the outcome.
    """

    conversation_id: str
    question: str
    history: list[dict[str, str]] = field(default_factory=list)  # [{"role": ..., "text": ...}], oldest first
    customer_id: str = ""
    tools: ToolBox | None = None
    tool_call_id: str | None = None
    # The customer's language (Conversation.language, "" = not known yet): what Kefu's own
    # sentences and the model's answer are said in.
    language: str = ""


# What became of a question (PROTOCOL.md §2 `message_end.outcome`); `stopped` is set by the runner.
OUTCOMES = ("answered", "clarify", "declined", "tool", "stopped")


@dataclass(frozen=True)
class AnswerChunk:
    text: str = ""  # a delta to append to the answer
    citations: list[dict[str, Any]] | None = None  # when set: the answer's whole citation list
    # When set: what the answer is (one of OUTCOMES; the last one a provider yields wins).
    outcome: str | None = None
    # When set: the topics a `clarify` answer offers, up to 3 `{"title", "document_id"}`.
    suggestions: list[dict[str, Any]] | None = None


class Provider(Protocol):
    name: str

    def answer(self, turn: Turn) -> AsyncIterator[AnswerChunk]:
        """Stream the answer. Cancellation (a `stop`) may arrive at any await."""
        ...


class ProviderUnavailable(Exception):
    """The configured provider cannot answer (not configured, not implemented, unreachable)."""
