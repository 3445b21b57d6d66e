"""Headless Chromium signed in as Ada on the demo page: her order question shows the tool's
progress and the answer from the demo CRM/ERP; a refund asks first, and Approve runs it once.
Screenshots are kept in the test's tmp dir and copied to .notes/screens/ for review."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.support.browser import answers, open_widget, screenshot, send

pytestmark = [pytest.mark.browser, pytest.mark.e2e, pytest.mark.django_db(transaction=True)]
SCREENS = Path(__file__).resolve().parents[2] / ".notes" / "screens"


def test_ada_tracks_her_order_and_approves_a_refund(
    demo_connector, demo_crm, celery_worker_live, web_server, page: Page, tmp_path  # noqa: F811
) -> None:
    server = web_server(ASSISTANT_TOKEN_DELAY_S="0")
    demo_crm.faults(delay_ms=1500, times=1)  # slow enough to see the progress line
    open_widget(page, f"{server.http_url}/?as=demo-customer-1")
    expect(page.get_by_test_id("shopper")).to_have_text("Ada Lovelace")

    send(page, "Where is my order PP-1001?")
    progress = page.locator(".kefu-tool")
    expect(progress).to_have_attribute("data-status", "running")
    expect(progress).to_have_text("Tracking your parcel…working…")
    screenshot(page, tmp_path, "tools-1-progress")
    expect(progress).to_have_text("Tracking your parcel…done")
    expect(answers(page).locator(".kefu-text")).to_contain_text(
        ["Order PP-1001 is shipped: it shipped on 2026-11-23 with DHL, tracking number 00340434161234567890"]
    )
    expect(answers(page)).to_have_attribute("data-state", "final")
    screenshot(page, tmp_path, "tools-2-answer")

    send(page, "I want a refund for PP-1001")
    question = page.locator('.kefu-tool[data-status="awaiting_confirmation"]')
    expect(question).to_contain_text("Request a refund for order PP-1001?")
    # Every argument it will send, each on its own line.
    assert question.locator(".kefu-tool-text").inner_text() == (
        "Request a refund for order PP-1001?\norder_number: PP-1001\nreason: I want a refund for PP-1001"
    )
    expect(answers(page).nth(1).locator(".kefu-text")).to_have_text(
        "Request a refund for order PP-1001? Please approve or decline above."
    )
    assert demo_crm.writes() == []
    screenshot(page, tmp_path, "tools-3-confirm")

    question.get_by_role("button", name="Approve").click()
    expect(answers(page)).to_have_count(3)
    expect(answers(page).nth(2).locator(".kefu-text")).to_contain_text(
        ["Done: refund RF-7001 of €39.00 for order PP-1001 is requested."]
    )
    expect(page.get_by_role("button", name="Approve")).to_have_count(0)
    expect(page.locator(".kefu-tool").nth(1)).to_have_text("Requesting your refund…done")
    screenshot(page, tmp_path, "tools-4-refunded")
    [write] = demo_crm.writes()
    assert (write["requests"], write["effects"]) == (1, 1)
