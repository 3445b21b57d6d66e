"""Through the chat socket of a real server, Ada writes in Chinese: the order tool runs for her
and every sentence Kefu says (the tool's progress line, the answer, the approval question) is
Chinese. The host page's language reaches the server in `auth`: a hint while the customer's own
words say nothing, the decision when the page fixes it; a bad one is ignored, never an error."""

from __future__ import annotations

import httpx
import pytest

from apps.conversations.models import Conversation
from tests.support.sockets import ask, demo_customer_socket

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.e2e]


def tools_of(events):
    return [(e["name"], e["status"], e["detail"]) for e in events if e["type"] == "tool"]


async def language_of(conversation_id: str) -> str:
    return (await Conversation.objects.aget(pk=conversation_id)).language


async def test_ada_asks_in_chinese_and_is_answered_in_chinese(
    demo_connector, demo_crm, celery_worker_live, web_server
):
    server = web_server(ASSISTANT_TOKEN_DELAY_S="0")
    ada = await demo_customer_socket(server)
    try:
        events = await ask(ada, "我的订单PP-1001到哪里了？")
        conversation_id = events[0]["conversation_id"]
        assert await language_of(conversation_id) == "zh-hans"
        assert tools_of(events) == [
            ("shipment_track", "queued", "正在追踪您的包裹…"),
            ("shipment_track", "running", "正在追踪您的包裹…"),
            ("shipment_track", "succeeded", "正在追踪您的包裹…"),
        ]
        assert events[-1]["text"] == (
            "订单 PP-1001 当前状态：已发货。该订单已于 2026-11-23 通过 DHL 发货，"
            "运单号 00340434161234567890，预计 2026-11-30 前送达。 [1]"
        )
        assert (events[-1]["outcome"], [c["title"] for c in events[-1]["citations"]]) == (
            "tool",
            ["Demo CRM"],
        )

        # "ok" says nothing about the language: the refund question is still asked in Chinese.
        events = await ask(ada, "ok", conversation_id)
        assert await language_of(conversation_id) == "zh-hans"
        events = await ask(ada, "我要退款 PP-1001", conversation_id)
        [question] = [e for e in events if e["type"] == "tool"]
        assert (question["status"], question["detail"]) == (
            "awaiting_confirmation",
            "要为订单 PP-1001 申请退款吗？\norder_number: PP-1001\nreason: 我要退款 PP-1001",
        )
        assert events[-1]["text"] == "要为订单 PP-1001 申请退款吗？ 请在上方选择同意或拒绝。"
        assert demo_crm.writes() == []

        await ada.send(
            {
                "type": "tool_confirm",
                "conversation_id": conversation_id,
                "call_id": question["call_id"],
                "approve": True,
            }
        )
        events = await ada.recv_until("message_end", timeout=60)
        assert [d for _n, _s, d in tools_of(events)] == ["正在为您申请退款…"] * 3
        assert (
            events[-1]["text"] == "已完成：订单 PP-1001 的退款 RF-7001（金额 €39.00）状态：已提交申请。 [1]"
        )

        # Writing in English again switches back.
        events = await ask(ada, "Where is my order PP-1002?", conversation_id)
        assert await language_of(conversation_id) == "en"
        assert tools_of(events)[0] == ("shipment_track", "queued", "Tracking your parcel…")
        assert events[-1]["text"] == "Order PP-1002 has not shipped yet (it is processing). [1]"
    finally:
        await ada.close()


async def test_the_host_page_language_in_auth(demo_connector, demo_crm, celery_worker_live, web_server):
    server = web_server(ASSISTANT_TOKEN_DELAY_S="0")
    # A hint: "PP-1002" alone says nothing, so the page's zh-CN (-> zh-hans) stands in.
    ada = await demo_customer_socket(server, language="zh-CN")
    try:
        events = await ask(ada, "PP-1002")
        assert await language_of(events[0]["conversation_id"]) == "zh-hans"
        assert events[-1]["text"] == "订单 PP-1002 当前状态：处理中（1 × Wool blanket，合计 €89.00）。 [1]"
    finally:
        await ada.close()
    # Fixed by the page: English words, a Chinese conversation.
    ada = await demo_customer_socket(server, language="zh-hans", language_fixed=True)
    try:
        events = await ask(ada, "Where is my order PP-1001?")
        assert await language_of(events[0]["conversation_id"]) == "zh-hans"
        assert tools_of(events)[0][2] == "正在追踪您的包裹…"
    finally:
        await ada.close()
    # Nonsense from the page is ignored (the language is detected), and auth still succeeds.
    ada = await demo_customer_socket(server, language=["zh"], language_fixed="yes")
    try:
        events = await ask(ada, "Where is my order PP-1001?")
        assert await language_of(events[0]["conversation_id"]) == "en"
    finally:
        await ada.close()


async def test_the_widget_catalog_over_http(web_server):
    server = web_server()
    async with httpx.AsyncClient(base_url=server.http_url) as http:
        zh = await http.get("/widget/i18n/zh-CN.json", headers={"Origin": "https://shop.example"})
        other = await http.get("/widget/i18n/tlh.json")
    assert zh.status_code == 200 and zh.headers["access-control-allow-origin"] == "*"
    body = zh.json()
    assert body["language"] == "zh-hans"
    assert {k: body["catalog"][k] for k in ("Approve", "Type your message…", "Talk to a person")} == {
        "Approve": "同意",
        "Type your message…": "请输入您的消息…",
        "Talk to a person": "转人工客服",
    }
    assert (other.json()["language"], other.json()["catalog"]) == ("en", {})
