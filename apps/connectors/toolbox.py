"""The tools of one assistant turn (the `ToolBox` of apps/connectors/contract.py), scoped to the
conversation's customer. The model sees names, descriptions and JSON schemas only, and only of
the tools this customer may run: one needing an identity (or a verified e-mail) the customer has
not proved is withheld, and a call to it is refused before anything is recorded or sent."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import jsonschema
from django.conf import settings
from django.db import connection
from django.utils.translation import gettext, gettext_noop

from apps.conversations.language import spoken
from apps.conversations.models import Conversation
from apps.core.redis import redis_async_waits
from apps.customers.models import Customer

from .contract import ToolOutcome
from .models import (
    FINAL_STATUSES,
    Connector,
    Tool,
    ToolCall,
    ToolCallStatus,
    request_templates,
    templates_need_email,
    templates_need_identity,
)
from .registry import identity_missing, identity_of
from .services import tool_call_done_key, tool_call_give_up, tool_call_request

try:  # the lead's per-call DB pool; Channels' helper until it lands
    from apps.core.db import db_async
except ImportError:  # pragma: no cover
    from channels.db import database_sync_to_async as db_async

logger = logging.getLogger(__name__)

WAIT_SLICE_S = 5.0  # under the Redis client's 15 s socket timeout
EMPTY_SCHEMA = {"type": "object", "properties": {}}
SIGN_IN = gettext_noop("Please sign in to the shop first, so I can look up your personal details.")


@dataclass(frozen=True)
class _Tool:
    id: int
    name: str
    description: str
    parameters: dict[str, Any]
    source: str


def _outcome(call: ToolCall) -> ToolOutcome:
    source = call.tool.connector.name if call.tool else call.connector_slug
    status = call.status
    if status == ToolCallStatus.SUCCEEDED:
        return ToolOutcome(
            call_id=str(call.id),
            name=call.name,
            status=status,
            data=call.result,
            source=source,
            message=call.detail,
        )
    if status == ToolCallStatus.AWAITING_CONFIRMATION:
        # The question's sentence; the customer sees it with every argument in the `tool` event.
        question = call.detail.splitlines()[0] if call.detail else ""
        return ToolOutcome(
            call_id=str(call.id), name=call.name, status=status, source=source, message=question
        )
    if status == ToolCallStatus.DECLINED:
        return ToolOutcome(
            call_id=str(call.id),
            name=call.name,
            status=status,
            source=source,
            message="You declined, so nothing was done.",
        )
    error = call.result if isinstance(call.result, dict) and "error" in call.result else {"error": "failed"}
    return ToolOutcome(
        call_id=str(call.id),
        name=call.name,
        status=status,
        data=error,
        source=source,
        message=f"{source} could not help with that just now.",
    )


def _in_language(text: str, language: str) -> str:
    with spoken(language):
        return gettext(text)


def _call_load(*, call_id: str, conversation_id: str) -> ToolCall | None:
    return (
        ToolCall.objects.select_related("tool__connector")
        .filter(pk=call_id, conversation_id=conversation_id, requested_by__isnull=True)
        .first()
    )


def _request(*, conversation_id: str, turn_id: str, tool_id: int, arguments: dict[str, Any]) -> ToolCall:
    tool = Tool.objects.select_related("connector").get(pk=tool_id)
    call = tool_call_request(conversation_id=conversation_id, turn_id=turn_id, tool=tool, arguments=arguments)
    return _call_load(call_id=str(call.id), conversation_id=conversation_id)


class ConnectorToolBox:
    def __init__(
        self, *, conversation_id: str, turn_id: str, tools: list[_Tool], withheld: Sequence[_Tool] = (),
        language: str = "",
    ) -> None:
        self.conversation_id, self.turn_id = conversation_id, turn_id or None
        self.language = language  # the customer's: the sign-in request is said in it
        self._tools = {t.name: t for t in tools}
        self._withheld = {t.name: t for t in withheld}

    def specs(self) -> list[dict[str, Any]]:
        return [
            {"name": t.name, "description": t.description, "parameters": t.parameters}
            for t in self._tools.values()
        ]

    def has(self, name: str) -> bool:
        return name in self._tools

    def withheld(self) -> set[str]:
        """Tools not offered until the customer signs in (the builtin provider says so)."""
        return set(self._withheld)

    async def call(self, name: str, arguments: dict[str, Any]) -> ToolOutcome:
        tool = self._tools.get(name)
        if tool is None and name in self._withheld:  # never offered: no row, no request
            return ToolOutcome(
                call_id="",
                name=name,
                status="denied",
                source=self._withheld[name].source,
                data={"error": "sign_in_required"},
                message=_in_language(SIGN_IN, self.language),
            )
        if tool is None:
            return ToolOutcome(
                call_id="",
                name=name,
                status="failed",
                data={"error": "unknown_tool"},
                message=f"There is no tool called {name}.",
            )
        try:
            jsonschema.validate(arguments, tool.parameters)
        except jsonschema.ValidationError as exc:
            return ToolOutcome(
                call_id="",
                name=name,
                status="failed",
                source=tool.source,
                data={"error": "invalid_arguments", "message": exc.message[:300]},
                message="I could not use those details; could you rephrase them?",
            )
        call = await db_async(_request)(
            conversation_id=self.conversation_id, turn_id=self.turn_id, tool_id=tool.id, arguments=arguments
        )
        if call.status == ToolCallStatus.AWAITING_CONFIRMATION:
            return _outcome(call)
        return await self._wait(str(call.id))

    async def resume(self, call_id: str) -> ToolOutcome:
        return await self._wait(call_id)

    async def _wait(self, call_id: str) -> ToolOutcome:
        """Until the row is final or TOOL_WAIT_S passes: BLPOP the done-notification in slices,
        re-reading the row (the truth) after each."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + settings.TOOL_WAIT_S
        key = tool_call_done_key(call_id)
        while True:
            call = await db_async(_call_load)(call_id=call_id, conversation_id=self.conversation_id)
            if call is None:
                return ToolOutcome(
                    call_id=call_id,
                    name="",
                    status="failed",
                    data={"error": "unknown_call"},
                    message="I could not find that request.",
                )
            if call.status in FINAL_STATUSES or call.status == ToolCallStatus.AWAITING_CONFIRMATION:
                return _outcome(call)
            remaining = deadline - loop.time()
            if remaining <= 0:
                await db_async(tool_call_give_up)(
                    call_id=call_id, reason=f"no outcome within {settings.TOOL_WAIT_S}s"
                )
                call = await db_async(_call_load)(call_id=call_id, conversation_id=self.conversation_id)
                return _outcome(call)
            try:
                await redis_async_waits().blpop([key], timeout=min(WAIT_SLICE_S, remaining))
            except Exception as exc:  # Redis away: poll the row instead
                logger.warning("tool call %s: waiting without Redis (%s)", call_id, type(exc).__name__)
                await asyncio.sleep(min(1.0, max(remaining, 0.05)))


def toolbox_for(*, conversation_id: str, customer_id: str, turn_id: str) -> ConnectorToolBox | None:
    """The turn's tools (None when no connector has an enabled tool), for a caller holding ids only:
    the conversation must be the customer's. (The turn runner reads the customer with its claim
    and calls `toolbox_of`.) Sync: call it from a DB thread."""
    conversation = Conversation.objects.select_related("customer").filter(pk=conversation_id).first()
    if conversation is None or str(conversation.customer_id) != str(customer_id):
        return None
    return toolbox_of(conversation_id=conversation_id, customer=conversation.customer, turn_id=turn_id,
                      language=conversation.language)


def toolbox_of(
    *, conversation_id: str, customer: Customer, turn_id: str, language: str
) -> ConnectorToolBox | None:
    """`toolbox_for` with the conversation's customer and language already read (the assistant's
    turn claim reads them in its own statement). Sync: call it from a DB thread."""
    identity = identity_of(customer)
    tools: list[_Tool] = []
    withheld: list[_Tool] = []
    for listed in _enabled_tools():
        (withheld if identity_missing(listed, identity) else tools).append(listed.tool)
    if not tools and not withheld:
        return None
    return ConnectorToolBox(
        conversation_id=str(conversation_id),
        turn_id=str(turn_id) if turn_id else "",
        tools=tools,
        withheld=withheld,
        language=language,
    )


@dataclass(frozen=True)
class _Listed:
    """An enabled tool as the turn offers it, with what it needs of the customer."""

    tool: _Tool
    needs_identity: bool
    needs_email: bool


# Every turn's claim lists the tools: one plain statement, no model instances. Through the ORM
# (select_related) it cost 1 ms of CPU per answer, 13 % of a web process's time while 200
# answers started at once (py-spy); this costs 0.06 ms. The first tool of each name is offered.
_ENABLED_TOOLS = f"""
    SELECT t.id, t.name, t.description, t.parameters, c.name, t.path_template, t.query_map, t.body_map
      FROM {Tool._meta.db_table} t JOIN {Connector._meta.db_table} c ON c.id = t.connector_id
     WHERE t.enabled AND c.enabled
     ORDER BY c.slug, t.name"""


def _enabled_tools() -> list[_Listed]:
    with connection.cursor() as cursor:
        cursor.execute(_ENABLED_TOOLS)
        rows = cursor.fetchall()
    listed: list[_Listed] = []
    seen: set[str] = set()
    for pk, name, description, parameters, source, path_template, query_map, body_map in rows:
        if name in seen:
            continue
        seen.add(name)
        templates = request_templates(path_template, _json(query_map), _json(body_map))
        tool = _Tool(id=pk, name=name, description=description, parameters=_json(parameters) or EMPTY_SCHEMA,
                     source=source)
        listed.append(_Listed(tool, templates_need_identity(templates), templates_need_email(templates)))
    return listed


def _json(value: Any) -> Any:
    """A jsonb column as read on Django's connection: text (its JSONField decodes it there)."""
    return json.loads(value) if isinstance(value, str) else value
