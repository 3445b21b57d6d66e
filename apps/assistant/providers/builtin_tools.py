"""Tool routing for the `builtin` provider: obvious intents (order numbers like PP-1001, "where
is my order", tracking, refunds, cancellations, tickets, stock) become tool calls through
`turn.tools`, and the outcome is phrased from the system's data, citing the system."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from django.conf import settings

from apps.connectors.contract import ToolOutcome

from .base import AnswerChunk, Turn

_ORDER = re.compile(r"\b([A-Za-z]{2,4}-\d{3,8})\b")
_TICKET = re.compile(r"\b(T-\d{3,8})\b", re.IGNORECASE)
_CURRENCY = {"EUR": "€", "USD": "$", "GBP": "£"}
OFFER_PERSON = "Would you like to talk to a person?"


@dataclass(frozen=True)
class ToolIntent:
    name: str
    arguments: dict[str, Any]


def _has(q: str, *words: str) -> bool:
    return any(re.search(rf"\b{w}", q) for w in words)


def tool_intent(question: str, available: set[str]) -> ToolIntent | None:
    """The tool call a question obviously asks for, or None (then the knowledge base answers)."""
    q = question.lower()
    ticket = _TICKET.search(question)
    orders = [m for m in _ORDER.findall(question) if not _TICKET.fullmatch(m)]
    order = orders[0].upper() if orders else None
    candidates: list[ToolIntent] = []
    if ticket and _has(q, "ticket", "case", "status"):
        candidates.append(ToolIntent("ticket_status", {"ticket_id": ticket.group(1).upper()}))
    if order:
        if _has(q, "refund", "money back", "reimburse"):
            candidates.append(ToolIntent("refund_request", {"order_number": order, "reason": question[:500]}))
        elif _has(q, "cancel"):
            candidates.append(ToolIntent("order_cancel", {"order_number": order, "reason": question[:500]}))
        elif _has(q, "track", "where", "ship", "deliver", "parcel", "package", "arriv", "carrier"):
            candidates.append(ToolIntent("shipment_track", {"order_number": order}))
        candidates.append(ToolIntent("order_status", {"order_number": order}))
    if _has(q, r"(open|create|file|raise|start|new)\b.{0,20}\b(ticket|case|complaint)", "complain"):
        candidates.append(
            ToolIntent(
                "ticket_create", {"subject": question.strip()[:200].ljust(3, "."), "body": question[:4000]}
            )
        )
    if _has(q, "in stock", "stock", "availab", "sold out"):
        words = [w for w in re.findall(r"[a-z0-9\-]{3,}", q) if w not in _STOCK_STOP]
        if words:
            candidates.append(ToolIntent("stock_check", {"query": " ".join(words)[:100]}))
    if _has(
        q,
        "where is my order",
        "my orders?",
        "order status",
        "my parcel",
        "my package",
        "my delivery",
        "track my",
        "tracking",
    ):
        candidates.append(ToolIntent("orders_list", {}))
    if _has(q, "my profile", "my account", "my details", "email on file"):
        candidates.append(ToolIntent("customer_profile", {}))
    return next((c for c in candidates if c.name in available), None)


_STOCK_STOP = frozenset(
    "the and you your are have has any still stock in-stock available availability "
    "sold out is do does can please there what when back".split()
)


def _money(amount: Any, currency: Any) -> str:
    return f"{_CURRENCY.get(str(currency), str(currency) + ' ')}{amount}"


def _shipped(shipment: dict[str, Any]) -> str:
    """ "shipped on <date> with <carrier>, tracking number <n>, expected by / delivered on <date>"."""
    text = f"shipped on {shipment.get('shipped_at')} with {shipment.get('carrier')}"
    text += f", tracking number {shipment.get('tracking_number')}"
    if shipment.get("delivered_at"):
        return text + f", and was delivered on {shipment['delivered_at']}"
    if shipment.get("estimated_delivery"):
        return text + f", expected by {shipment['estimated_delivery']}"
    return text


def _shipment_sentence(number: str, status: str, shipment: dict[str, Any] | None) -> str:
    if not shipment:
        return f"Order {number} has not shipped yet (it is {status})."
    return f"Order {number} is {status}: it {_shipped(shipment)}."


def _phrase_data(name: str, data: Any) -> str:
    d = data if isinstance(data, dict) else {}
    if name == "order_status":
        lines = ", ".join(f"{line.get('quantity')} × {line.get('name')}" for line in d.get("lines", []))
        text = f"Order {d.get('number')} is {d.get('status')}"
        text += f" ({lines}, total {_money(d.get('total'), d.get('currency'))})." if lines else "."
        if d.get("shipment"):
            text += f" It {_shipped(d['shipment'])}."
        return text
    if name == "shipment_track":
        return _shipment_sentence(d.get("number", ""), d.get("status", ""), d.get("shipment"))
    if name == "orders_list":
        orders = d.get("orders", [])
        if not orders:
            return "I can't find any orders on your account."
        listed = "; ".join(f"{o['number']} ({o['status']}, placed {o['placed_at']})" for o in orders)
        return (
            f"You have {len(orders)} order{'s' if len(orders) != 1 else ''}: {listed}. "
            "Ask me about one by its number for the details."
        )
    if name == "stock_check":
        products = d.get("products", [])
        if not products:
            return "I couldn't find a product by that name."
        return " ".join(
            f"{p['name']} ({p['sku']}) is "
            + (f"in stock ({p['stock']} available)." if p.get("in_stock") else "out of stock right now.")
            for p in products
        )
    if name == "ticket_create":
        opened = f"Done: I opened ticket {d.get('id')} \u201c{d.get('subject')}\u201d."
        return f"{opened} Our team will get back to you."
    if name == "ticket_status":
        return f"Ticket {d.get('id')} \u201c{d.get('subject')}\u201d is {d.get('status')}."
    if name == "refund_request":
        return (
            f"Done: refund {d.get('id')} of {_money(d.get('amount'), d.get('currency'))} for order "
            f"{d.get('order')} is {d.get('status')}."
        )
    if name == "order_cancel":
        return (
            f"Done: order {d.get('number')} is {d.get('status')}; "
            f"{_money(d.get('refund_amount'), d.get('currency'))} will be refunded."
        )
    if name == "customer_profile":
        return (
            f"Your account: {d.get('name')}, {d.get('email')}, {d.get('tier')} member since {d.get('since')}."
        )
    shown = ", ".join(f"{k}: {v}" for k, v in list(d.items())[:8] if not isinstance(v, dict | list))
    return f"Here is what I found: {shown}." if shown else "Done."


def phrase(outcome: ToolOutcome, intent: ToolIntent | None = None) -> tuple[str, list[dict[str, Any]]]:
    """The answer's text and citations for a tool outcome."""
    if outcome.status == "succeeded":
        text = _phrase_data(outcome.name, outcome.data)
        citation = {"n": 1, "document_id": None, "title": outcome.source, "url": "", "snippet": text[:200]}
        return f"{text} [1]", [citation]
    if outcome.status == "awaiting_confirmation":
        return f"{outcome.message} Please approve or decline above.", []
    if outcome.status == "declined":
        return "OK, I won't do that; nothing was changed.", []
    if outcome.status == "denied":
        return outcome.message, []
    error = outcome.data.get("error") if isinstance(outcome.data, dict) else None
    if error == "not_found":
        what = (
            f"order {intent.arguments['order_number']}"
            if intent and "order_number" in intent.arguments
            else "that"
        )
        return f"I couldn't find {what} on your account. Could you check the number? {OFFER_PERSON}", []
    if error == "rejected" and isinstance(outcome.data, dict) and outcome.data.get("message"):
        return (
            f"Sorry, {outcome.source} could not do that: {str(outcome.data['message'])[:200]} {OFFER_PERSON}",
            [],
        )
    return f"Sorry, I couldn't get that from {outcome.source or 'our systems'} just now. {OFFER_PERSON}", []


def _names(turn: Turn) -> set[str]:
    """The tools offered, plus those withheld until the customer signs in: asking for one of
    those gets "please sign in" rather than an answer from the knowledge base."""
    assert turn.tools is not None
    withheld = getattr(turn.tools, "withheld", None)
    return {s["name"] for s in turn.tools.specs()} | (withheld() if withheld else set())


def wants_tool(turn: Turn) -> bool:
    if turn.tools is None:
        return False
    return bool(turn.tool_call_id) or tool_intent(turn.question, _names(turn)) is not None


async def tool_answer(turn: Turn) -> AsyncIterator[AnswerChunk]:
    """The answer to a turn that `wants_tool`: run (or resume) the call, phrase its outcome."""
    assert turn.tools is not None
    intent = None
    if turn.tool_call_id:
        outcome = await turn.tools.resume(turn.tool_call_id)
    else:
        intent = tool_intent(turn.question, _names(turn))
        assert intent is not None
        outcome = await turn.tools.call(intent.name, intent.arguments)
    text, citations = phrase(outcome, intent)
    yield AnswerChunk(citations=citations, outcome="tool")
    delay = settings.ASSISTANT_TOKEN_DELAY_S
    words = re.findall(r"\S+\s*", text)
    for i, word in enumerate(words):
        yield AnswerChunk(text=word)
        if delay and i < len(words) - 1:
            await asyncio.sleep(delay)
