"""The console and the widget side by side in headless Chromium (two browser contexts, one
real uvicorn): a customer asks for a person, an agent takes over, replies, writes a private
note, hands back to the assistant, and closes; the customer rates the conversation.

Screenshots of both sides are kept in the test's tmp dir (and copied to KEFU_SCREENS_DIR when
that is set)."""

from __future__ import annotations

import re
import time

import pytest
from playwright.sync_api import Browser, Page, expect

from apps.console.models import CannedReply, Note
from apps.conversations.models import Conversation, ConversationEvent, Message
from apps.customers.services import customer_identified_get_or_create
from apps.devstack.demo import DEMO_CUSTOMERS
from tests.support.browser import answers, beside_playwright, console_sign_in, open_widget, screenshot, send
from tests.support.people import make_user

pytestmark = [pytest.mark.browser, pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

SECRET = "Internal: offered a goodwill voucher, do not mention to the customer"


def new_page(chromium: Browser, errors: list[str]) -> Page:
    context = chromium.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    page.on("pageerror", lambda error: errors.append(str(error)))
    return page


def wait_for(condition, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.1)


def sign_in_as_alice(page: Page) -> None:
    """Fill the console's login form shown on `page`."""
    console_sign_in(page, "alice@example.com")


def test_an_agent_takes_over_replies_notes_hands_back_and_closes(web_server, browser, tmp_path) -> None:  # noqa: F811
    beside_playwright(make_user, username="alice@example.com", first="Alice", last="Agent")
    beside_playwright(
        CannedReply.objects.create,
        shortcut="thanks",
        title="Thanks for waiting",
        text="Thanks for waiting! I'm looking into it now.",
    )
    beside_playwright(customer_identified_get_or_create, **DEMO_CUSTOMERS[0])  # Ada Lovelace
    server = web_server()
    errors: list[str] = []
    customer, agent = new_page(browser, errors), new_page(browser, errors)

    # The agent signs in and watches the queue.
    agent.goto(f"{server.http_url}/console/")
    expect(agent).to_have_url(f"{server.http_url}/console/login/?next=/console/")
    sign_in_as_alice(agent)
    expect(agent.locator("#kf-conn")).to_have_text("Live · Alice Agent")
    expect(agent.locator(".kf-queue-item")).to_have_count(0)

    # The customer asks a question, then for a person: the queue shows it live, waiting.
    open_widget(customer, f"{server.http_url}/?as=demo-customer-1")
    send(customer, "My parcel has not arrived")
    expect(answers(customer)).to_have_count(1)
    customer.get_by_role("button", name="Talk to a person").click()
    expect(customer.locator(".kefu-system-handoff")).to_have_text(
        ["We're finding a person to help you. You can keep writing meanwhile."]
    )
    item = agent.locator(".kf-queue-item")
    expect(item).to_have_count(1)
    expect(item).to_have_attribute("data-state", "waiting")
    expect(item.locator(".kf-q-name")).to_have_text("Ada Lovelace")
    expect(item.locator(".kf-q-wait")).to_have_text(re.compile(r"^waiting \d+ min$"))
    expect(agent).to_have_title("(1 waiting) Console · Kefu")  # seen from a background tab too

    # The agent opens and claims it: the customer sees who joined.
    item.locator("a").click()
    expect(agent.locator("#kf-history .kf-role-customer .kf-text")).to_have_text(
        ["My parcel has not arrived"]
    )
    # Live first: a click before the page's script runs is the plain POST form, whose reload
    # would swallow what the test types next.
    expect(agent.locator("#kf-conn")).to_have_text("Live · Alice Agent")
    agent.get_by_role("button", name="Claim").click()
    expect(agent.locator("#kf-state")).to_have_attribute("data-state", "human")
    expect(agent.locator("#kf-assignee")).to_have_text("with Alice Agent")
    expect(customer.locator(".kefu-system-handoff").last).to_have_text("Alice Agent joined the conversation.")

    # A reply (typed), a canned reply ("/" + shortcut, Tab), and a private note.
    box = agent.get_by_label("Reply")
    box.fill("Hi Ada, I'm <b>Alice</b>. Let me check.")
    box.press("Enter")
    box.fill("")
    box.type("/tha")
    expect(agent.locator("#kf-canned li")).to_have_text(["/thanks Thanks for waiting"])
    box.press("Tab")
    expect(box).to_have_value("Thanks for waiting! I'm looking into it now.")
    box.press("Enter")
    box.fill(SECRET)
    agent.get_by_role("button", name="Add internal note").click()
    expect(agent.locator("#kf-history .kf-note .kf-text")).to_have_text([SECRET])

    agent_texts = customer.locator(".kefu-from-agent .kefu-text")
    expect(agent_texts).to_have_text(
        ["Hi Ada, I'm <b>Alice</b>. Let me check.", "Thanks for waiting! I'm looking into it now."]
    )
    expect(customer.locator(".kefu-from-agent .kefu-author").first).to_have_text("Alice Agent")
    expect(agent.locator("#kf-history .kf-role-agent .kf-text")).to_have_count(2)
    screenshot(agent, tmp_path, "console-after-claim-reply-note")
    screenshot(customer, tmp_path, "widget-after-agent-reply")

    # Hand back: the assistant answers the next question.
    agent.get_by_role("button", name="Hand back to assistant").click()
    expect(customer.locator(".kefu-system-handoff").last).to_have_text(
        "You're chatting with our assistant again."
    )
    send(customer, "How long does shipping take?")
    expect(answers(customer)).to_have_count(2)
    expect(answers(customer).nth(1)).to_have_attribute("data-state", "final")
    expect(agent.locator("#kf-history .kf-role-assistant")).to_have_count(2)

    # The agent closes (claiming again first: only the assignee or nobody may close); the
    # customer rates it, and the rating shows in the console.
    agent.get_by_role("button", name="Close").click()
    expect(agent.locator("#kf-state")).to_have_attribute("data-state", "closed")
    customer.get_by_role("button", name="4 out of 5").click()
    expect(customer.get_by_text("Thanks for your feedback!")).to_be_visible()
    # The rating reaches the console with its next queue entry or a reload (the widget shows its
    # thanks before the server has stored it: wait for the row).
    wait_for(lambda: beside_playwright(Conversation.objects.get).csat_score == 4)
    agent.reload()
    expect(agent.locator("#kf-csat")).to_have_text("Rated 4/5")
    expect(agent.locator(".kf-queue-item .kf-q-csat")).to_have_text(["4/5"])
    screenshot(agent, tmp_path, "console-closed-rated")
    screenshot(customer, tmp_path, "widget-closed-rated")

    # The note never reached the customer: not on their screen, not in their stream.
    expect(customer.get_by_text(SECRET)).to_have_count(0)
    assert beside_playwright(Note.objects.count) == 1
    events = beside_playwright(lambda: list(ConversationEvent.objects.values_list("payload", flat=True)))
    assert SECRET not in str(events)
    assert beside_playwright(lambda: Message.objects.filter(text__contains="goodwill").count()) == 0
    # Nothing became markup on either side.
    expect(customer.locator(".kefu-log b")).to_have_count(0)
    expect(agent.locator("#kf-history b.kf-who, #kf-history .kf-text b")).to_have_count(0)
    assert errors == []


def test_the_console_reconnects_and_shows_what_it_missed_once(web_server, browser, tmp_path) -> None:  # noqa: F811
    from apps.conversations.services import message_create
    from tests.support.factories import ConversationFactory

    alice = beside_playwright(make_user, username="alice@example.com", first="Alice", last="Agent")
    conversation = beside_playwright(ConversationFactory, state="human", assignee=alice)
    beside_playwright(message_create, conversation=conversation, role="customer", text="First")
    server = web_server()
    errors: list[str] = []
    agent = new_page(browser, errors)
    agent.goto(f"{server.http_url}/console/login/?next=/console/c/{conversation.pk}/")
    sign_in_as_alice(agent)
    expect(agent.locator("#kf-conn")).to_have_text("Live · Alice Agent")
    texts = agent.locator("#kf-history .kf-role-customer .kf-text")
    expect(texts).to_have_text(["First"])

    server.kill()
    expect(agent.locator("#kf-conn")).to_have_text("Connection lost. Reconnecting…")
    beside_playwright(
        message_create, conversation=conversation, role="customer", text="Sent while you were away"
    )
    web_server(port=server.port)

    expect(agent.locator("#kf-conn")).to_have_text("Live · Alice Agent")
    expect(texts).to_have_text(["First", "Sent while you were away"])
    beside_playwright(message_create, conversation=conversation, role="customer", text="And live again")
    expect(texts).to_have_text(["First", "Sent while you were away", "And live again"])
    assert errors == []


def test_the_customer_panel_shows_the_crm_record_after_the_page(
    web_server, browser, demo_crm, settings, tmp_path  # noqa: F811
) -> None:
    from apps.connectors.demo import demo_connectors_setup
    from apps.conversations.services import message_create

    beside_playwright(make_user, username="alice@example.com", first="Alice", last="Agent")
    settings.DEMO_CRM_TOKEN = "demo-crm-test-token"  # the connector's bearer token, as stored
    beside_playwright(demo_connectors_setup, base_url=demo_crm.url)
    ada = beside_playwright(customer_identified_get_or_create, **DEMO_CUSTOMERS[0])
    conversation = beside_playwright(Conversation.objects.create, customer=ada, state="waiting")
    beside_playwright(message_create, conversation=conversation, role="customer", text="Where is PP-1002?")
    server = web_server()
    errors: list[str] = []
    agent = new_page(browser, errors)
    agent.goto(f"{server.http_url}/console/login/?next=/console/c/{conversation.pk}/")
    sign_in_as_alice(agent)

    panel = agent.locator("#kf-crm")
    expect(panel.locator("h3")).to_have_text(["Customer profile · Demo CRM", "Orders list · Demo CRM"])
    expect(panel.locator(".kf-crm-rows li b")).to_have_text(["PP-1002", "PP-1001"])
    screenshot(agent, tmp_path, "console-customer-panel")
    assert errors == []
