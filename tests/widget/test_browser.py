"""The widget as a customer uses it: headless Chromium on the demo page, a real uvicorn server."""

from __future__ import annotations

import json
import os
from typing import TypeVar

import pytest
from playwright.sync_api import Locator, Page, expect

from apps.conversations.events import event_emit
from apps.conversations.models import Conversation, Message
from apps.conversations.services import message_create
from tests.support.browser import answers, beside_playwright, open_widget, send

T = TypeVar("T")

pytestmark = [pytest.mark.browser, pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def the_conversation() -> Conversation:
    return beside_playwright(Conversation.objects.get)


def customer_texts(page: Page) -> Locator:
    return page.locator(".kefu-from-customer .kefu-text")


def test_a_customer_chats_and_a_reload_restores_the_history(web_server, page: Page) -> None:
    server = web_server()
    open_widget(page, f"{server.http_url}/")

    send(page, "How long does shipping take?")

    expect(customer_texts(page)).to_have_text(["How long does shipping take?"])
    expect(answers(page)).to_have_count(1)
    expect(answers(page)).to_have_attribute("data-state", "final")
    answer = answers(page).locator(".kefu-text").text_content()
    assert answer.strip()
    expect(page.get_by_role("button", name="Stop answering")).to_be_hidden()
    if path := os.environ.get("KEFU_WIDGET_SCREENSHOT"):  # a look at the real thing, on request
        page.screenshot(path=path)

    page.reload()

    # The panel stays open across the reload and the conversation is replayed from the server.
    expect(page.get_by_role("dialog", name="Kefu demo shop")).to_be_visible()
    expect(customer_texts(page)).to_have_text(["How long does shipping take?"])
    expect(answers(page).locator(".kefu-text")).to_have_text([answer])
    assert Message.objects.filter(role="customer").count() == 1


def test_the_widget_reconnects_after_a_crash_and_resumes_without_loss(web_server, page: Page) -> None:
    server = web_server()
    open_widget(page, f"{server.http_url}/")
    send(page, "Do you ship abroad?")
    expect(answers(page)).to_have_count(1)
    expect(answers(page)).to_have_attribute("data-state", "final")

    server.kill()
    expect(page.locator(".kefu-banner")).to_have_text("Connection lost. Reconnecting…")
    send(page, "Sent while the server was down", wait_for_ack=False)
    expect(page.locator(".kefu-pending .kefu-meta")).to_have_text("Waiting for connection…")
    # An event stored while the customer is offline: the resume must bring it.
    beside_playwright(
        event_emit,
        conversation=the_conversation(),
        type="update",
        payload={"kind": "order", "title": "Order KF-1001 shipped", "body": "Arrives Friday.", "data": {}},
    )
    web_server(port=server.port)

    expect(page.locator(".kefu-banner")).to_be_hidden()
    expect(page.locator(".kefu-card")).to_have_text(["Order KF-1001 shippedArrives Friday."])
    expect(page.locator(".kefu-pending")).to_have_count(0)
    expect(customer_texts(page)).to_have_text(["Do you ship abroad?", "Sent while the server was down"])
    expect(answers(page)).to_have_count(2)
    expect(answers(page).nth(1)).to_have_attribute("data-state", "final")
    # Settled: still exactly once on screen, and stored exactly once.
    expect(customer_texts(page)).to_have_count(2)
    expect(page.locator(".kefu-card")).to_have_count(1)
    assert Message.objects.filter(text="Sent while the server was down").count() == 1


def test_message_text_and_citations_cannot_inject_html_or_script(web_server, page: Page) -> None:
    server = web_server()
    open_widget(page, f"{server.http_url}/")
    attack = '<img src=x onerror="window.kefuPwned=1"><script>window.kefuPwned=2</script>'

    send(page, attack)

    expect(customer_texts(page)).to_have_text([attack])
    beside_playwright(
        message_create,
        conversation=the_conversation(),
        role="assistant",
        text="See [1] and [2].",
        citations=[
            {
                "n": 1,
                "document_id": None,
                "title": '<b onmouseover="window.kefuPwned=3">Evil</b>',
                "url": "javascript:window.kefuPwned=4",
                "snippet": "",
            },
            {
                "n": 2,
                "document_id": None,
                "title": "Returns policy",
                "url": "https://shop.example/returns",
                "snippet": "",
            },
        ],
    )
    cited = page.locator(".kefu-from-assistant").filter(has_text="See [1] and [2].")
    expect(cited.locator(".kefu-text").first).to_have_text("See [1] and [2].")
    expect(cited.locator("a.kefu-cite")).to_have_text(["[2]"])
    expect(cited.locator("a.kefu-cite")).to_have_attribute("href", "https://shop.example/returns")
    expect(cited.locator(".kefu-sources li")).to_have_text(
        ['[1] <b onmouseover="window.kefuPwned=3">Evil</b>', "[2] Returns policy"]
    )
    expect(cited.locator(".kefu-sources a")).to_have_count(1)
    # Nothing became markup: no element came from a message, and no script ran.
    expect(page.locator(".kefu-log img, .kefu-log script, .kefu-log b")).to_have_count(0)
    hrefs = page.locator(".kefu-log a").evaluate_all("links => links.map(a => a.href)")
    assert hrefs == ["https://shop.example/returns", "https://shop.example/returns"]
    assert page.evaluate("window.kefuPwned") is None


def test_the_demo_page_signs_the_widget_in_as_the_demo_customer(web_server, page: Page) -> None:
    server = web_server()
    open_widget(page, f"{server.http_url}/?as=demo-customer-1")

    send(page, "Hello from Ada")

    conversation = beside_playwright(Conversation.objects.select_related("customer").get)
    assert conversation.customer.external_id == "demo-customer-1"
    # Signing out on the host page leaves nothing of Ada's chat in the widget.
    page.goto(f"{server.http_url}/")
    expect(page.get_by_role("dialog", name="Kefu demo shop")).to_be_visible()  # still open
    key = f"kefu:{server.http_url}:session"
    session = page.wait_for_function(f"localStorage.getItem({key!r})").json_value()  # a new guest's
    assert json.loads(session)["user_id"] is None
    assert json.loads(session)["customer_id"] != str(conversation.customer.pk)
    expect(page.locator(".kefu-banner")).to_be_hidden()
    expect(customer_texts(page)).to_have_count(0)
