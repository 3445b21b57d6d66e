"""What a customer does with an assistant answer, in headless Chromium against a real server:
pick one of a clarifying answer's suggested topics (PROTOCOL.md §2 `message_end.suggestions`),
and rate an answer with a thumbs up/down and a comment (the `feedback` frame). Screenshots at
desktop and phone width are written to .notes/screens/ for review."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Locator, Page, expect

from apps.conversations.events import event_emit
from apps.conversations.models import Conversation, Message, MessageFeedback
from apps.conversations.services import message_create
from apps.knowledge.ingestion import documents_index_inline
from apps.knowledge.services import document_upsert, knowledge_base_get_or_create
from tests.support.browser import answers, beside_playwright, open_widget, send

pytestmark = [pytest.mark.browser, pytest.mark.e2e, pytest.mark.django_db(transaction=True)]
SCREENS = Path(__file__).resolve().parents[2] / ".notes" / "screens"
PHONE = {"width": 380, "height": 760}
KB = "answers-help"  # the server answers from it (KB_DEFAULT_SLUG)

# Two articles fit "When are you open?" equally (which shop?); the others are there so that they don't.
ARTICLES = {
    "berlin-shop-hours": (
        "# Opening hours of our Berlin shop\n\n"
        "Our Berlin shop on Torstrasse is open Monday to Saturday from 10:00 to 19:00. It is closed on "
        "Sundays and public holidays."
    ),
    "munich-shop-hours": (
        "# Opening hours of our Munich shop\n\n"
        "Our Munich shop on Leopoldstrasse is open Monday to Friday from 9:00 to 18:00 and on Saturday "
        "from 10:00 to 16:00. It is closed on Sundays."
    ),
    "shipping-costs": (
        "# Shipping costs\n\n"
        "Standard delivery costs 4.95 euros and takes two to four working days. Orders over 60 euros "
        "ship for free. Express delivery costs 9.95 euros and arrives the next working day."
    ),
    "returns": (
        "# Returning an item\n\n"
        "You can return an unused item within 30 days of delivery for a full refund. Start a return "
        "from your account page and print the prepaid label."
    ),
}


def help_center_load() -> None:
    kb = knowledge_base_get_or_create(slug=KB, name="Answers test help center")
    docs = [
        document_upsert(kb=kb, external_id=slug, filename=f"{slug}.md", data=text.encode(),
                        source_url=f"https://help.example/articles/{slug}")[0]
        for slug, text in ARTICLES.items()
    ]
    documents_index_inline(docs)


def shot(page: Page, name: str) -> None:
    """A screenshot at the page's width, and one at a phone's, of the same moment."""
    SCREENS.mkdir(parents=True, exist_ok=True)
    size = page.viewport_size
    page.screenshot(path=str(SCREENS / f"{name}-desktop.png"))
    page.set_viewport_size(PHONE)
    page.locator(".kefu-log").evaluate("log => { log.scrollTop = log.scrollHeight; }")
    page.screenshot(path=str(SCREENS / f"{name}-phone.png"))
    page.set_viewport_size(size)


def topics(answer: Locator) -> Locator:
    return answer.get_by_role("group", name="Suggested topics").get_by_role("button")


def customer_texts(page: Page) -> Locator:
    return page.locator(".kefu-from-customer .kefu-text")


def eventually(fn, what: str, timeout_s: float = 30) -> Any:
    """Poll server-side state the page changed (a frame without an answer) until it is there."""
    deadline = time.monotonic() + timeout_s
    while (value := beside_playwright(fn)) is None:
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)
    return value


def test_a_clarifying_answer_offers_topics_and_a_tap_gets_a_cited_answer(web_server, page: Page) -> None:
    beside_playwright(help_center_load)
    server = web_server(KB_DEFAULT_SLUG=KB, ASSISTANT_TOKEN_DELAY_S="0")
    open_widget(page, f"{server.http_url}/")

    send(page, "When are you open?")

    clarify = answers(page).first
    expect(clarify).to_have_attribute("data-state", "final")
    expect(clarify).to_have_attribute("data-outcome", "clarify")
    expect(topics(clarify)).to_have_count(2)
    assert sorted(topics(clarify).all_text_contents()) == ["Opening hours of our Berlin shop",
                                                           "Opening hours of our Munich shop"]
    shot(page, "answers-1-clarify")

    # By keyboard: the topic is an ordinary button.
    topics(clarify).filter(has_text="Munich").focus()
    page.keyboard.press("Enter")

    expect(customer_texts(page)).to_have_text(["When are you open?", "Opening hours of our Munich shop"])
    expect(page.get_by_role("group", name="Suggested topics")).to_have_count(0)
    expect(page.locator(".kefu-pending")).to_have_count(0)
    expect(page.get_by_role("textbox", name="Message")).to_be_focused()
    expect(answers(page)).to_have_count(2)
    answer = answers(page).nth(1)
    expect(answer).to_have_attribute("data-state", "final")
    expect(answer).to_have_attribute("data-outcome", "answered")
    expect(answer.locator(".kefu-sources li")).to_have_text(["[1] Opening hours of our Munich shop"])
    expect(answer.locator(".kefu-sources a")).to_have_attribute(
        "href", "https://help.example/articles/munich-shop-hours")
    expect(topics(answer)).to_have_count(0)
    shot(page, "answers-2-picked")
    assert beside_playwright(
        lambda: list(Message.objects.filter(role="customer").order_by("seq").values_list("text", flat=True))
    ) == ["When are you open?", "Opening hours of our Munich shop"]


def test_a_thumbs_down_with_a_comment_is_stored_and_can_be_changed(web_server, page: Page) -> None:
    beside_playwright(help_center_load)
    server = web_server(KB_DEFAULT_SLUG=KB, ASSISTANT_TOKEN_DELAY_S="0")
    open_widget(page, f"{server.http_url}/")
    send(page, "How much is express delivery?")
    answer = answers(page).first
    expect(answer).to_have_attribute("data-state", "final")
    helpful = answer.get_by_role("button", name="Helpful", exact=True)
    unhelpful = answer.get_by_role("button", name="Not helpful")
    expect(helpful).to_have_attribute("aria-pressed", "false")
    # Nothing to rate on the customer's own message.
    expect(page.locator(".kefu-from-customer").get_by_role("button")).to_have_count(0)

    unhelpful.click()
    box = answer.get_by_role("textbox", name="What was missing or wrong?")
    expect(box).to_be_focused()
    box.fill("I wanted the price for Norway.")
    shot(page, "answers-3-thumbs-down")
    answer.get_by_role("button", name="Send").click()

    expect(box).to_be_hidden()
    expect(unhelpful).to_have_attribute("aria-pressed", "true")
    expect(helpful).to_have_attribute("aria-pressed", "false")
    expect(answer.get_by_role("status")).to_have_text("Thanks, that helps us improve.")
    shot(page, "answers-4-rated")
    message = beside_playwright(Message.objects.get, role="assistant")
    feedback = eventually(
        lambda: MessageFeedback.objects.filter(message=message, comment__gt="").first(), "the comment")
    assert (feedback.helpful, feedback.comment) == (False, "I wanted the price for Norway.")

    # The choice still shows after a reload, and can be changed: sending again replaces it.
    page.reload()
    answer = answers(page).first
    expect(answer.get_by_role("button", name="Not helpful")).to_have_attribute("aria-pressed", "true")
    answer.get_by_role("button", name="Helpful", exact=True).click()
    expect(answer.get_by_role("button", name="Helpful", exact=True)).to_have_attribute("aria-pressed", "true")
    expect(answer.get_by_role("button", name="Not helpful")).to_have_attribute("aria-pressed", "false")
    feedback = eventually(lambda: MessageFeedback.objects.filter(message=message, helpful=True).first(),
                          "the thumbs up")
    assert (feedback.helpful, feedback.comment) == (True, "")
    assert beside_playwright(MessageFeedback.objects.count) == 1


def clarify_answer(conversation: Conversation, text: str, titles: list[str]) -> Message:
    """An assistant answer that ends as a clarifying question, as the runner stores one."""
    suggestions = [{"title": t, "document_id": None} for t in titles]
    message = message_create(conversation=conversation, role="assistant", text=text, outcome="clarify",
                             suggestions=suggestions)
    event_emit(conversation=conversation, type="message_end", payload={
        "message_id": str(message.id), "text": text, "citations": [], "stopped": False,
        "outcome": "clarify", "suggestions": suggestions,
    })
    return message


def test_topics_are_offered_only_while_their_question_is_the_last_word(web_server, page: Page) -> None:
    server = web_server(ASSISTANT_TOKEN_DELAY_S="0")
    open_widget(page, f"{server.http_url}/")
    send(page, "Hello")
    expect(answers(page)).to_have_count(1)
    expect(answers(page)).to_have_attribute("data-state", "final")
    conversation = beside_playwright(Conversation.objects.get)

    beside_playwright(clarify_answer, conversation=conversation, text="Which do you mean?",
                      titles=["Returns", "Exchanges"])
    first = answers(page).nth(1)
    expect(topics(first)).to_have_text(["Returns", "Exchanges"])
    shot(page, "answers-0-topics")
    send(page, "Neither, I mean a refund")  # typed instead of tapped: the topics go
    expect(topics(first)).to_have_count(0)
    expect(answers(page)).to_have_count(3)  # its answer (a decline: no knowledge base here)
    expect(answers(page).nth(2)).to_have_attribute("data-state", "final")

    page.reload()  # the replay shows the question without its topics: it was answered
    expect(customer_texts(page)).to_have_text(["Hello", "Neither, I mean a refund"])
    expect(answers(page)).to_have_count(3)
    expect(page.get_by_role("group", name="Suggested topics")).to_have_count(0)

    beside_playwright(clarify_answer, conversation=conversation, text="Which refund?",
                      titles=["Refund of an order", "Refund of a gift card"])
    beside_playwright(message_create, conversation=conversation, role="agent", text="I can help too.")
    # The agent's message came after it: no topics, and nothing to rate on the agent's message.
    expect(page.locator(".kefu-from-agent")).to_have_count(1)
    expect(page.get_by_role("group", name="Suggested topics")).to_have_count(0)
    expect(page.locator(".kefu-from-agent").get_by_role("button")).to_have_count(0)

    beside_playwright(clarify_answer, conversation=conversation, text="Which refund do you mean?",
                      titles=["Refund of an order", "Refund of a gift card"])
    last = answers(page).filter(has_text="Which refund do you mean?")
    expect(topics(last)).to_have_text(["Refund of an order", "Refund of a gift card"])
    page.reload()  # still the last word: still offered
    expect(topics(answers(page).filter(has_text="Which refund do you mean?"))).to_have_text(
        ["Refund of an order", "Refund of a gift card"])
    expect(page.get_by_role("group", name="Suggested topics")).to_have_count(1)

    # A tap sends the title as the customer's own message, once, and the topics go.
    topics(answers(page).filter(has_text="Which refund do you mean?")).filter(has_text="gift card").click()
    expect(customer_texts(page)).to_have_text(["Hello", "Neither, I mean a refund", "Refund of a gift card"])
    expect(page.get_by_role("group", name="Suggested topics")).to_have_count(0)
    expect(page.get_by_role("textbox", name="Message")).to_be_focused()
    expect(page.locator(".kefu-pending")).to_have_count(0)  # acknowledged: stored
    assert beside_playwright(Message.objects.filter(role="customer", text="Refund of a gift card").count) == 1
