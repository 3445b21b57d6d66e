"""Tool routing for the `builtin` provider: obvious intents (order numbers like PP-1001, "where
is my order", tracking, refunds, cancellations, tickets, stock), in English or Chinese, become
tool calls through `turn.tools`, and the outcome is phrased from the system's data in the
customer's language (apps/assistant/phrases.py), citing the system."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from django.conf import settings

from apps.connectors.contract import ToolOutcome

from ..phrases import phrase, status_word
from .base import AnswerChunk, Turn

# No \b: in "订单PP-1001到哪里了" the number touches Han characters, which are word characters too.
_ORDER = re.compile(r"(?<![A-Za-z0-9])([A-Za-z]{2,4}-\d{3,8})(?![0-9])")
_TICKET = re.compile(r"(?<![A-Za-z0-9])(T-\d{3,8})(?![0-9])", re.IGNORECASE)
_CURRENCY = {"EUR": "€", "USD": "$", "GBP": "£"}

# Chinese requests (substrings: Chinese has no spaces to find words by). Kept beside the English
# words they match, intent by intent; a third language adds its words the same way.
_ZH_REFUND = ("退款", "退钱", "把钱退", "退回款", "返还")
_ZH_CANCEL = ("取消", "撤销", "撤单", "不要了")
_ZH_TRACK = (
    "到哪",
    "在哪",
    "物流",
    "快递",
    "发货",
    "运单",
    "追踪",
    "跟踪",
    "送到",
    "到货",
    "配送",
    "包裹",
    "什么时候到",
    "寄出",
    "派送",
)
_ZH_TICKET = ("工单", "投诉单", "案件")
_ZH_TICKET_STATUS = ("状态", "进度", "怎么样", "处理")
_ZH_TICKET_NEW = ("投诉", "开工单", "开一个工单", "新建工单", "创建工单", "提交工单", "开个工单", "建工单")
_ZH_STOCK = ("有货", "有没有货", "库存", "缺货", "卖完", "售罄", "现货", "还有吗", "到货了吗")
_ZH_ORDERS = ("我的订单", "订单状态", "查订单", "查一下订单", "我的包裹", "我的快递", "物流信息", "我买的")
_ZH_PROFILE = ("我的账户", "我的账号", "我的资料", "个人信息", "我的邮箱")
_ZH_STOCK_STOP = re.compile(r"请问|你们|还|有没有货|有货|库存|缺货|卖完了?|售罄|现货|吗|呢|的|[？?！!。，,]")


@dataclass(frozen=True)
class ToolIntent:
    name: str
    arguments: dict[str, Any]


def _has(q: str, *words: str) -> bool:
    return any(re.search(rf"\b{w}", q) for w in words)


def _has_zh(q: str, words: tuple[str, ...]) -> bool:
    return any(w in q for w in words)


def tool_intent(question: str, available: set[str]) -> ToolIntent | None:
    """The tool call a question obviously asks for, or None (then the knowledge base answers).
    Understands English and Chinese requests."""
    q = question.lower()
    ticket = _TICKET.search(question)
    orders = [m for m in _ORDER.findall(question) if not _TICKET.fullmatch(m)]
    order = orders[0].upper() if orders else None
    candidates: list[ToolIntent] = []
    if ticket and (_has(q, "ticket", "case", "status") or _has_zh(q, _ZH_TICKET + _ZH_TICKET_STATUS)):
        candidates.append(ToolIntent("ticket_status", {"ticket_id": ticket.group(1).upper()}))
    if order:
        if _has(q, "refund", "money back", "reimburse") or _has_zh(q, _ZH_REFUND):
            candidates.append(ToolIntent("refund_request", {"order_number": order, "reason": question[:500]}))
        elif _has(q, "cancel") or _has_zh(q, _ZH_CANCEL):
            candidates.append(ToolIntent("order_cancel", {"order_number": order, "reason": question[:500]}))
        elif _has(q, "track", "where", "ship", "deliver", "parcel", "package", "arriv", "carrier") or _has_zh(
            q, _ZH_TRACK
        ):
            candidates.append(ToolIntent("shipment_track", {"order_number": order}))
        candidates.append(ToolIntent("order_status", {"order_number": order}))
    if _has(
        q, r"(open|create|file|raise|start|new)\b.{0,20}\b(ticket|case|complaint)", "complain"
    ) or _has_zh(q, _ZH_TICKET_NEW):
        candidates.append(
            ToolIntent(
                "ticket_create", {"subject": question.strip()[:200].ljust(3, "."), "body": question[:4000]}
            )
        )
    if _has(q, "in stock", "stock", "availab", "sold out"):
        words = [w for w in re.findall(r"[a-z0-9\-]{3,}", q) if w not in _STOCK_STOP]
        if words:
            candidates.append(ToolIntent("stock_check", {"query": " ".join(words)[:100]}))
    elif _has_zh(q, _ZH_STOCK):
        rest = " ".join(_ZH_STOCK_STOP.sub(" ", question).split())
        if len(rest) >= 2:
            candidates.append(ToolIntent("stock_check", {"query": rest[:100]}))
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
    ) or _has_zh(q, _ZH_ORDERS):
        candidates.append(ToolIntent("orders_list", {}))
    if _has(q, "my profile", "my account", "my details", "email on file") or _has_zh(q, _ZH_PROFILE):
        candidates.append(ToolIntent("customer_profile", {}))
    return next((c for c in candidates if c.name in available), None)


_STOCK_STOP = frozenset(
    "the and you your are have has any still stock in-stock available availability "
    "sold out is do does can please there what when back".split()
)


def _money(amount: Any, currency: Any) -> str:
    return f"{_CURRENCY.get(str(currency), str(currency) + ' ')}{amount}"


def _shipped(shipment: dict[str, Any], lang: str) -> str:
    """ "shipped on <date> with <carrier>, tracking number <n>, expected by / delivered on <date>"."""
    text = phrase(
        "shipped",
        lang,
        date=shipment.get("shipped_at"),
        carrier=shipment.get("carrier"),
        tracking=shipment.get("tracking_number"),
    )
    if shipment.get("delivered_at"):
        return phrase("shipped_delivered", lang, shipped=text, date=shipment["delivered_at"])
    if shipment.get("estimated_delivery"):
        return phrase("shipped_expected", lang, shipped=text, date=shipment["estimated_delivery"])
    return text


def _shipment_sentence(number: str, status: str, shipment: dict[str, Any] | None, lang: str) -> str:
    said = status_word(status, lang)
    if not shipment:
        return phrase("order_not_shipped", lang, number=number, status=said)
    return phrase("order_shipment", lang, number=number, status=said, shipped=_shipped(shipment, lang))


def _phrase_data(name: str, data: Any, lang: str = "") -> str:
    d = data if isinstance(data, dict) else {}
    if name == "order_status":
        lines = ", ".join(
            phrase("order_line", lang, quantity=line.get("quantity"), name=line.get("name"))
            for line in d.get("lines", [])
        )
        status = status_word(d.get("status"), lang)
        if lines:
            total = _money(d.get("total"), d.get("currency"))
            text = phrase(
                "order_status_lines", lang, number=d.get("number"), status=status, lines=lines, total=total
            )
        else:
            text = phrase("order_status", lang, number=d.get("number"), status=status)
        if d.get("shipment"):
            text += " " + phrase("shipped_it", lang, shipped=_shipped(d["shipment"], lang))
        return text
    if name == "shipment_track":
        return _shipment_sentence(d.get("number", ""), d.get("status", ""), d.get("shipment"), lang)
    if name == "orders_list":
        orders = d.get("orders", [])
        if not orders:
            return phrase("orders_none", lang)
        listed = "; ".join(
            phrase(
                "orders_item",
                lang,
                number=o["number"],
                status=status_word(o["status"], lang),
                placed=o["placed_at"],
            )
            for o in orders
        )
        if len(orders) == 1:
            return phrase("orders_one", lang, listed=listed)
        return phrase("orders_many", lang, count=len(orders), listed=listed)
    if name == "stock_check":
        products = d.get("products", [])
        if not products:
            return phrase("stock_none", lang)
        return " ".join(
            phrase("stock_in", lang, name=p["name"], sku=p["sku"], stock=p["stock"])
            if p.get("in_stock")
            else phrase("stock_out", lang, name=p["name"], sku=p["sku"])
            for p in products
        )
    if name == "ticket_create":
        return phrase("ticket_opened", lang, id=d.get("id"), subject=d.get("subject"))
    if name == "ticket_status":
        return phrase(
            "ticket_status",
            lang,
            id=d.get("id"),
            subject=d.get("subject"),
            status=status_word(d.get("status"), lang),
        )
    if name == "refund_request":
        return phrase(
            "refund_done",
            lang,
            id=d.get("id"),
            amount=_money(d.get("amount"), d.get("currency")),
            order=d.get("order"),
            status=status_word(d.get("status"), lang),
        )
    if name == "order_cancel":
        return phrase(
            "cancel_done",
            lang,
            number=d.get("number"),
            status=status_word(d.get("status"), lang),
            amount=_money(d.get("refund_amount"), d.get("currency")),
        )
    if name == "customer_profile":
        return phrase(
            "profile",
            lang,
            name=d.get("name"),
            email=d.get("email"),
            tier=d.get("tier"),
            since=d.get("since"),
        )
    shown = ", ".join(f"{k}: {v}" for k, v in list(d.items())[:8] if not isinstance(v, dict | list))
    return phrase("found", lang, shown=shown) if shown else phrase("done", lang)


def phrase_outcome(
    outcome: ToolOutcome, intent: ToolIntent | None = None, language: str = ""
) -> tuple[str, list[dict[str, Any]]]:
    """The answer's text and citations for a tool outcome, in the customer's `language`."""
    lang = language
    if outcome.status == "succeeded":
        text = _phrase_data(outcome.name, outcome.data, lang)
        citation = {"n": 1, "document_id": None, "title": outcome.source, "url": "", "snippet": text[:200]}
        return f"{text} [1]", [citation]
    if outcome.status == "awaiting_confirmation":
        # outcome.message is the question as the customer saw it (already in their language).
        return phrase("tool_approve", lang, question=outcome.message), []
    if outcome.status == "declined":
        return phrase("tool_declined", lang), []
    if outcome.status == "denied":
        return outcome.message, []
    error = outcome.data.get("error") if isinstance(outcome.data, dict) else None
    if error == "not_found":
        if intent and "order_number" in intent.arguments:
            return phrase("tool_not_found_order", lang, order=intent.arguments["order_number"]), []
        return phrase("tool_not_found", lang), []
    if error == "rejected" and isinstance(outcome.data, dict) and outcome.data.get("message"):
        reason = str(outcome.data["message"])[:200]
        return phrase("tool_rejected", lang, system=outcome.source, reason=reason), []
    return phrase("tool_unreachable", lang, system=outcome.source or phrase("our_systems", lang)), []


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
    text, citations = phrase_outcome(outcome, intent, turn.language)
    yield AnswerChunk(citations=citations, outcome="tool")
    delay = settings.ASSISTANT_TOKEN_DELAY_S
    words = re.findall(r"\S+\s*", text)
    for i, word in enumerate(words):
        yield AnswerChunk(text=word)
        if delay and i < len(words) - 1:
            await asyncio.sleep(delay)
