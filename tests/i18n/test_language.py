"""The customer's language: detected offline among settings.LANGUAGES, a short or ambiguous
message keeps the one known, the host page fills in or (fixed) decides; Kefu's own sentences
and the builtin provider's tool answers in that language."""

from __future__ import annotations

import pytest

from apps.assistant.phrases import PHRASES, phrase
from apps.assistant.providers.builtin_tools import _phrase_data, tool_intent
from apps.connectors.demo import DEMO_TOOLS
from apps.conversations.language import language_decide, language_detect, supported

ALL = {t["name"] for t in DEMO_TOOLS}


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("我的订单PP-1001到哪里了？", "zh-hans"),
        ("你们支持哪些付款方式？", "zh-hans"),
        ("谢谢", "zh-hans"),
        ("Where is my order PP-1001?", "en"),
        ("How do I return a pair of shoes?", "en"),
        # Mixed: the language the sentence is built in.
        ("我要refund，订单PP-1001", "zh-hans"),
        ("Can I 退货 this jacket please?", "en"),
        # Too little to tell.
        ("ok", ""),
        ("PP-1001", ""),
        ("thanks", ""),
        ("好", ""),
        ("ada@example.com", ""),
        ("👍", ""),
    ],
)
def test_detect(text, language):
    assert language_detect(text) == language


@pytest.mark.parametrize(
    ("current", "text", "page", "fixed", "decided"),
    [
        ("zh-hans", "ok", "", False, "zh-hans"),  # short: keeps the previous language
        ("en", "PP-1001", "zh-hans", False, "en"),  # known already: the page's hint does not change it
        ("", "PP-1001", "zh-hans", False, "zh-hans"),  # nothing known: the page's language
        ("", "ok", "", False, ""),  # still unknown
        ("zh-hans", "Where is my order PP-1001?", "", False, "en"),  # a clear message changes it
        ("", "Where is my order PP-1001?", "zh-CN", False, "en"),  # the customer's words beat a hint
        ("", "Where is my order PP-1001?", "zh-CN", True, "zh-hans"),  # a fixed page language wins
        ("", "我的订单到哪里了", "en-GB", True, "en"),
        ("", "我的订单到哪里了", "tlh", True, "zh-hans"),  # a language Kefu lacks is no override
    ],
)
def test_decide(current, text, page, fixed, decided):
    assert language_decide(current=current, text=text, page=page, fixed=fixed) == decided


def test_supported_tags():
    assert [supported(t) for t in ["zh-CN", "zh_Hans", "zh-SG", "zh", "en-GB", "EN", "fr", "", None]] == [
        "zh-hans",
        "zh-hans",
        "zh-hans",
        "zh-hans",
        "en",
        "en",
        "",
        "",
        "",
    ]


def test_phrases_in_both_languages():
    assert phrase("dont_know", "en") == "I don't know that one, sorry. Would you like to talk to a person?"
    assert phrase("dont_know", "") == phrase("dont_know", "en")  # not known yet: the default language
    assert phrase("dont_know", "zh-hans") == "抱歉，这个问题我不清楚。需要为您转接人工客服吗？"
    assert phrase("clarify", "zh-hans") == "为了准确回答您的问题，请问您想了解的是下面哪一项？"
    assert (
        phrase("kb_fallback", "zh-hans", fallback="en")
        == "我们的中文帮助中心暂无相关文章，以下内容来自英语帮助中心。"
    )
    assert phrase("kb_fallback", "en", fallback="en") == (
        "I have no article on this in your language, so I'm answering from the English help center."
    )
    # Every sentence has its Chinese translation.
    untranslated = [k for k in PHRASES if phrase(k, "zh-hans") == phrase(k, "en") and k != "order_line"]
    assert untranslated == []


@pytest.mark.parametrize(
    ("question", "name", "arguments"),
    [
        ("我的订单PP-1001到哪里了？", "shipment_track", {"order_number": "PP-1001"}),
        ("PP-1001发货了吗", "shipment_track", {"order_number": "PP-1001"}),
        ("订单pp-1002的状态", "order_status", {"order_number": "PP-1002"}),
        ("我要退款 PP-1001", "refund_request", {"order_number": "PP-1001", "reason": "我要退款 PP-1001"}),
        (
            "请帮我取消订单PP-1002",
            "order_cancel",
            {"order_number": "PP-1002", "reason": "请帮我取消订单PP-1002"},
        ),
        ("工单T-5001的进度怎么样了", "ticket_status", {"ticket_id": "T-5001"}),
        (
            "我要投诉，台灯一直闪",
            "ticket_create",
            {"subject": "我要投诉，台灯一直闪", "body": "我要投诉，台灯一直闪"},
        ),
        ("羊毛围巾还有货吗？", "stock_check", {"query": "羊毛围巾"}),
        ("我的订单到哪里了？", "orders_list", {}),
        ("查一下我的账户信息", "customer_profile", {}),
    ],
)
def test_chinese_intents(question, name, arguments):
    intent = tool_intent(question, ALL)
    assert (intent.name, intent.arguments) == (name, arguments)


def test_chinese_questions_for_the_help_center_call_no_tool():
    assert [tool_intent(q, ALL) for q in ["怎么退货？", "你们支持哪些付款方式？", "运费是多少？"]] == [
        None
    ] * 3


def test_tool_data_phrased_in_chinese():
    shipment = {
        "carrier": "DHL",
        "tracking_number": "0034",
        "shipped_at": "2026-11-23",
        "estimated_delivery": "2026-11-30",
    }
    data = {"number": "PP-1001", "status": "shipped", "shipment": shipment}
    assert _phrase_data("shipment_track", data, "zh-hans") == (
        "订单 PP-1001 当前状态：已发货。该订单已于 2026-11-23 通过 DHL 发货，"
        "运单号 0034，预计 2026-11-30 前送达。"
    )
    assert _phrase_data("shipment_track", data, "en") == (
        "Order PP-1001 is shipped: it shipped on 2026-11-23 with DHL, "
        "tracking number 0034, expected by 2026-11-30."
    )
    # A status word Kefu has no translation for is shown as the system sent it.
    assert _phrase_data("order_status", {"number": "PP-9", "status": "on_hold"}, "zh-hans") == (
        "订单 PP-9 当前状态：on_hold。"
    )
