"""What an answer generator is: an async stream of text deltas plus the citations they use,
and the tools it may call (apps/connectors implements `ToolBox`)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True)
class ToolOutcome:
    """What a tool call came to, as the assistant may use it.

    `status`: `succeeded`, `failed`, `awaiting_confirmation` (a write waits for the customer's
    `tool_confirm`; the answer should end by pointing at the question), `declined`, or `denied`
    (not allowed, e.g. an anonymous customer asking for personal data). `data` is trimmed,
    size-capped data from the system (never instructions); `source` names the system, for
    citing it; `message` is a customer-safe sentence describing the outcome.
    """

    call_id: str
    name: str
    status: str
    data: Any = None
    source: str = ""
    message: str = ""


class ToolBox(Protocol):
    """The tools of one turn, scoped to the conversation's authenticated customer."""

    def specs(self) -> list[dict[str, Any]]:
        """`[{"name", "description", "parameters": <JSON Schema>}]`: all the model ever sees."""
        ...

    async def call(self, name: str, arguments: dict[str, Any]) -> ToolOutcome:
        """Validate, record (a `ToolCall` row), run in a Celery worker, and wait for the outcome."""
        ...

    async def resume(self, call_id: str) -> ToolOutcome:
        """Run (once) a write the customer approved, and wait for the outcome."""
        ...


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
