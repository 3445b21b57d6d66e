"""Headless Chromium: the demo shop in Chinese (its language switch) shows the widget in
Chinese, and Ada's order question in Chinese gets the Chinese progress line and answer; the
console in Chinese for an agent who prefers it, and its switch back to English. Screenshots are
kept in the test's tmp dir (and copied to KEFU_SCREENS_DIR when set)."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from apps.console.language import agent_language_set
from tests.support.browser import answers, beside_playwright, console_sign_in, screenshot
from tests.support.people import make_user

pytestmark = [pytest.mark.browser, pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_the_widget_in_chinese_on_the_chinese_demo_page(
    demo_connector,
    demo_crm,
    celery_worker_live,
    web_server,
    page: Page,
    tmp_path,  # noqa: F811
) -> None:
    server = web_server(ASSISTANT_TOKEN_DELAY_S="0")
    demo_crm.faults(delay_ms=1500, times=1)  # slow enough to see the progress line
    page.goto(f"{server.http_url}/?as=demo-customer-1")
    page.get_by_role("link", name="简体中文").click()  # the demo page's language switch
    expect(page.locator("html")).to_have_attribute("lang", "zh-hans")
    expect(page.get_by_role("heading", name="Kefu 演示商店")).to_be_visible()
    expect(page.get_by_test_id("shopper")).to_have_text("Ada Lovelace")  # still signed in

    page.get_by_role("button", name="打开聊天").click()
    dialog = page.get_by_role("dialog", name="Kefu 演示商店")
    expect(dialog).to_be_visible()
    box = page.get_by_role("textbox", name="消息")
    expect(box).to_have_attribute("placeholder", "请输入您的消息…")
    expect(page.get_by_role("button", name="转人工客服")).to_be_visible()
    expect(page.locator(".kefu-status")).to_have_text("智能助手 · 即时回复")
    expect(page.locator(".kefu-greeting .kefu-text")).to_have_text(
        "您好！有关订单、配送或退货的问题都可以问我。"
    )

    box.fill("我的订单PP-1001到哪里了？")
    box.press("Enter")
    progress = page.locator(".kefu-tool")
    expect(progress).to_have_attribute("data-status", "running")
    expect(progress).to_have_text("正在追踪您的包裹…处理中…")
    screenshot(page, tmp_path, "zh-widget-1-progress")
    expect(progress).to_have_text("正在追踪您的包裹…已完成")
    expect(answers(page)).to_have_attribute("data-state", "final")
    expect(answers(page).locator(".kefu-text")).to_have_text(
        "订单 PP-1001 当前状态：已发货。该订单已于 2026-11-23 通过 DHL 发货，运单号 00340434161234567890，"
        "预计 2026-11-30 前送达。 [1]"
    )
    expect(answers(page).get_by_role("button", name="有帮助", exact=True)).to_be_visible()

    box.fill("我要退款 PP-1001")
    box.press("Enter")
    question = page.locator('.kefu-tool[data-status="awaiting_confirmation"]')
    expect(question.locator(".kefu-tool-text")).to_have_text(
        "要为订单 PP-1001 申请退款吗？\norder_number: PP-1001\nreason: 我要退款 PP-1001"
    )
    expect(question.get_by_role("button", name="同意")).to_be_visible()
    expect(question.get_by_role("button", name="拒绝")).to_be_visible()
    expect(answers(page).nth(1).locator(".kefu-text")).to_have_text(
        "要为订单 PP-1001 申请退款吗？ 请在上方选择同意或拒绝。"
    )
    screenshot(page, tmp_path, "zh-widget-2-approval")


def test_the_console_in_chinese_for_an_agent_who_prefers_it(web_server, page: Page, tmp_path) -> None:
    user = beside_playwright(make_user, username="mei@example.com", first="Mei", last="Lin")
    beside_playwright(agent_language_set, user_id=user.pk, language="zh-hans")
    server = web_server()
    page.goto(f"{server.http_url}/console/")
    console_sign_in(page, "mei@example.com")

    expect(page.locator("html")).to_have_attribute("lang", "zh-hans")
    expect(page.locator("#kf-conn")).to_have_text("在线 · Mei Lin")  # console.js, via the JS catalog
    nav = page.get_by_role("navigation", name="Console")
    expect(nav.get_by_role("link", name="队列")).to_be_visible()
    expect(nav.get_by_role("link", name="知识缺口")).to_be_visible()
    expect(page.get_by_role("button", name="筛选")).to_be_visible()
    expect(page.get_by_role("searchbox", name="搜索")).to_have_attribute(
        "placeholder", "搜索姓名、邮箱、消息"
    )
    expect(page.locator(".kf-placeholder")).to_have_text("请从队列中选择一个对话。")
    expect(page.get_by_role("combobox", name="语言")).to_have_value("zh-hans")
    screenshot(page, tmp_path, "zh-console")

    # The switch: back to English, remembered for the agent.
    page.get_by_role("combobox", name="语言").select_option("en")
    expect(page.get_by_role("button", name="Filter")).to_be_visible()
    expect(page.locator("#kf-conn")).to_have_text("Live · Mei Lin")
    assert (
        beside_playwright(
            lambda: __import__("apps.console.language", fromlist=["x"]).agent_language_get(user_id=user.pk)
        )
        == "en"
    )


def test_a_chinese_returns_question_is_answered_in_chinese_from_the_chinese_help_center(
    demo_kb_zh, web_server, page: Page, tmp_path
) -> None:
    server = web_server(ASSISTANT_TOKEN_DELAY_S="0")
    page.goto(f"{server.http_url}/")
    page.get_by_role("link", name="简体中文").click()
    page.get_by_role("button", name="打开聊天").click()
    box = page.get_by_role("textbox", name="消息")
    box.fill("买的东西不喜欢，可以退货吗？")
    box.press("Enter")

    answer = answers(page)
    expect(answer).to_have_attribute("data-state", "final")
    expect(answer).to_have_attribute("data-outcome", "answered")
    expect(answer.locator(".kefu-sources a")).to_have_attribute(
        "href", re.compile(r"^https://help\.pebbleandpine\.example/zh-hans/articles/returns-policy$")
    )
    expect(answer.locator(".kefu-sources li")).to_have_text(["[1] 退货政策"])
    expect(answer.locator(".kefu-text")).to_contain_text("天")  # quoted from the Chinese article
    screenshot(page, tmp_path, "zh-widget-3-returns")
