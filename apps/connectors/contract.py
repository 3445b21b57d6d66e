"""What a tool box promises the assistant: the tools of one turn and what a call came to.

It lives here, below the assistant, so the arrows point one way: `toolbox.py` implements
`ToolBox`, and the assistant's providers call it through this contract."""

from __future__ import annotations

from dataclasses import dataclass
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
