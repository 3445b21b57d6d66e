"""The question a write asks the customer (the `awaiting_confirmation` event's `detail`): the
tool's sentence, then one line per argument the request will carry, in full. The customer
approves what will be sent, not a summary the model wrote."""

from __future__ import annotations

import json
import re
from typing import Any

from django.utils.translation import gettext

from apps.conversations.language import spoken

from .models import Tool

# Past this the question is not asked at all (the call fails): approving what one cannot read
# is no approval, and cutting it would hide part of what is sent.
MAX_QUESTION_CHARS = 16_000
_PLACEHOLDER = re.compile(r"\{([A-Za-z0-9_.\-]+)\}")


class QuestionTooLong(Exception):
    pass


def _one_line(value: Any) -> str:
    """A value on one line: free text cannot add a line that looks like another argument."""
    if isinstance(value, str):
        text = value
    elif isinstance(value, bool) or value is None or isinstance(value, dict | list):
        text = json.dumps(value, ensure_ascii=False, sort_keys=True)
    else:
        text = str(value)
    return " ".join(part.strip() for part in text.splitlines() if part.strip())


def sent_arguments(*, tool: Tool, arguments: dict[str, Any]) -> list[tuple[str, str]]:
    """(name, value) of every model argument the request carries, in the order the request
    uses them (path, query, body); arguments no template uses are never sent and so not shown."""
    used = [n for t in tool.templates() for n in _PLACEHOLDER.findall(t) if not n.startswith("customer.")]
    return [
        (name, _one_line(arguments[name]))
        for name in dict.fromkeys(used)
        if name in arguments and arguments[name] is not None and arguments[name] != ""
    ]


class _Missing(dict):
    def __missing__(self, key: str) -> str:
        return "…"


def confirmation_question(*, tool: Tool, arguments: dict[str, Any], language: str = "") -> str:
    """e.g. "Request a refund for order PP-1001?\\norder_number: PP-1001\\nreason: arrived broken".
    The sentence in the customer's `language` when translators have the tool's template (the demo
    tools' are in locale/); the argument lines name what is sent, as sent."""
    with spoken(language):
        if tool.confirmation_template:
            template = gettext(tool.confirmation_template)
        else:
            template = gettext("Go ahead with %(tool)s?") % {"tool": tool.name.replace("_", " ")}
    scalars = {k: _one_line(v) for k, v in arguments.items() if isinstance(v, str | int | float)}
    try:
        sentence = template.format_map(_Missing(scalars))
    except (ValueError, IndexError, KeyError, AttributeError):
        sentence = template
    lines = [
        _one_line(sentence),
        *(f"{name}: {value}" for name, value in sent_arguments(tool=tool, arguments=arguments)),
    ]
    question = "\n".join(lines)
    if len(question) > MAX_QUESTION_CHARS:
        raise QuestionTooLong(f"the question would be {len(question)} characters")
    return question
