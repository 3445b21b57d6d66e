"""The admin's privacy pages in headless Chromium, reached the way an admin finds them: the
header's "Audit log" link and the customer panel's data link on a conversation. Erasing there
takes the customer's name off the page and lands on the audit log filtered to the erasure. An
agent sees neither link."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from apps.console.roles import role_join
from tests.support.browser import beside_playwright, console_sign_in, screenshot
from tests.support.factories import ConversationFactory
from tests.support.people import make_user

pytestmark = [pytest.mark.browser, pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def seed() -> str:
    role_join(user=make_user("ada.admin@example.com", "Ada", "Admin"), role="admin")
    role_join(user=make_user("al@example.com", "Al", "Agent"), role="agent")
    conversation = ConversationFactory(customer__name="Zoe Example", customer__email="zoe@example.com")
    return str(conversation.pk)


def test_an_admin_finds_the_audit_log_and_erases_a_customer_from_the_conversation(
    web_server, page: Page, tmp_path
) -> None:
    conversation_id = beside_playwright(seed)
    server = web_server()

    page.goto(f"{server.http_url}/console/c/{conversation_id}/")
    console_sign_in(page, "ada.admin@example.com")
    expect(page.locator(".kf-customer dd").first).to_have_text("Zoe Example")
    page.locator("#kf-customer-data").click()
    expect(page.locator("h1")).to_have_text("Zoe Example")
    screenshot(page, tmp_path, "privacy-customer", full_page=True)

    page.get_by_label("I understand that this cannot be undone").check()
    page.locator("#kf-erase").click()
    expect(page).to_have_url(f"{server.http_url}/console/audit/?target=" + page.url.split("target=")[-1])
    expect(page.locator(".kf-audit-log tbody tr").first).to_contain_text("customer.erase")
    screenshot(page, tmp_path, "privacy-audit", full_page=True)

    page.goto(f"{server.http_url}/console/c/{conversation_id}/")
    expect(page.locator(".kf-customer dd").first).not_to_have_text("Zoe Example")

    page.context.clear_cookies()  # signed out
    page.goto(f"{server.http_url}/console/c/{conversation_id}/")
    console_sign_in(page, "al@example.com")
    expect(page.locator(".kf-nav a")).to_have_count(3)  # queue, gaps, reports: no audit log
    expect(page.locator("#kf-customer-data")).to_have_count(0)
