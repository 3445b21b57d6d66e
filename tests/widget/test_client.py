"""kefu-client.js alone, with no widget view: a page that loads only the client drives it
against a real uvicorn server. What the view shows rests on these guarantees: durable events
once each and in seq order across reconnects, the outbox re-sending an unacknowledged message
with the same client_msg_id, and resume filling what was missed."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from django.test import Client
from playwright.sync_api import Page

from apps.conversations.events import event_emit
from apps.conversations.models import Conversation, Message, MessageFeedback
from apps.conversations.services import message_create
from tests.support.browser import beside_playwright

STATIC = Path(__file__).resolve().parents[2] / "apps" / "widget" / "static" / "kefu"
DURABLE = ("message", "message_end", "tool", "handoff", "update", "csat_request")
EMITTED = (*DURABLE, "stream", "ready", "conversation", "resumed", "queued", "sending", "ack", "retrying",
           "failed", "delivered", "disconnected", "error", "session_failed")

# Records what the client sent, received and emitted. `dropAcks` > 0 swallows that many `ack`
# frames before the client sees them: the server stored the message, its answer was lost.
HARNESS = """
window.sent = []; window.received = []; window.emitted = []; window.dropAcks = 0;
class RecordedSocket extends WebSocket {
  send(data) { sent.push(JSON.parse(data)); super.send(data); }
  set onmessage(fn) {
    super.onmessage = (e) => {
      const event = JSON.parse(e.data);
      const lost = event.type === "ack" && window.dropAcks > 0;
      if (lost) window.dropAcks -= 1;
      received.push({ ...event, lost });
      if (!lost) fn.call(this, e);
    };
  }
  get onmessage() { return super.onmessage; }
}
window.client = new KefuClient({ baseUrl: BASE, WebSocket: RecordedSocket });
for (const type of EMITTED) client.on(type, (detail) => emitted.push({ ...detail, on: type }));
"""


def live(test):
    """Headless Chromium against a real server process."""
    return pytest.mark.browser(pytest.mark.e2e(pytest.mark.django_db(transaction=True)(test)))


def client_page(page: Page, base_url: str) -> None:
    """A page with kefu-client.js and the harness, nothing else. Its document is the script's own
    URL: a real response from the loopback server, since Chromium keeps pages that came from
    elsewhere (other origins, or answered by Playwright) from opening loopback sockets."""
    script_url = f"{base_url}/widget/kefu-client.js"
    page.goto(script_url)
    page.add_script_tag(url=script_url)
    harness = HARNESS.replace("BASE", repr(base_url)).replace("EMITTED", repr(list(EMITTED)))
    page.add_script_tag(content=harness)
    assert page.evaluate("typeof window.Kefu") == "undefined"  # no view on this page


def emitted(page: Page, *kinds: str) -> list[dict[str, Any]]:
    return [e for e in page.evaluate("emitted") if not kinds or e["on"] in kinds]


def wait_until(page: Page, check, what: str, timeout_s: float = 30) -> None:
    """Poll `check()` while letting the browser run; fail naming `what`."""
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}; emitted: {emitted(page)[-12:]}")
        page.wait_for_timeout(50)


def durable_seqs(page: Page) -> list[int]:
    return [e["seq"] for e in emitted(page, *DURABLE)]


def test_the_client_uses_no_dom() -> None:
    source = (STATIC / "kefu-client.js").read_text()

    assert not re.search(r"\b(document|window|navigator|HTMLElement|innerHTML)\b", source)


@pytest.mark.django_db
def test_the_client_is_served_beside_the_widget(client: Client) -> None:
    """kefu-widget.js loads it from beside itself, so it is served the same way."""
    response = client.get("/widget/kefu-client.js")

    assert response.status_code == 200
    assert response["Content-Type"] == "text/javascript; charset=utf-8"
    assert response.content == (STATIC / "kefu-client.js").read_bytes()
    assert response["Cache-Control"] == "public, max-age=300"
    assert response["Access-Control-Allow-Origin"] == "*"


@live
def test_a_reconnect_mid_answer_keeps_seq_order_and_delivers_each_event_once(web_server, page: Page) -> None:
    server = web_server(ASSISTANT_TOKEN_DELAY_S="0.1", ASSISTANT_TOKEN_FLUSH_S="0", RATELIMIT_SESSION_IP="")
    client_page(page, server.http_url)
    page.evaluate("client.connect(); client.send('How long does shipping take?')")
    wait_until(page, lambda: emitted(page, "stream"), "the answer's first tokens")

    page.evaluate("client.reconnect()")
    wait_until(page, lambda: emitted(page, "message_end"), "the end of the answer")
    page.wait_for_timeout(500)  # anything late (a duplicate, say) would show now

    log = emitted(page)
    kinds = [e["on"] for e in log]
    assert kinds.count("disconnected") == 1 and kinds.count("ready") == 2
    second_ready = kinds.index("ready", kinds.index("ready") + 1)
    assert "stream" in kinds[second_ready:], "the answer ended before the reconnect: nothing tested"
    seqs = durable_seqs(page)
    assert seqs == list(range(1, len(seqs) + 1))
    [end] = emitted(page, "message_end")
    assert end["stopped"] is False
    # What streamed, across the reconnect (tokens, the resume's partial, tokens), is the final text.
    last_stream = [e for e in emitted(page, "stream") if e["message_id"] == end["message_id"]][-1]
    assert last_stream["text"] == end["text"]
    stored = Message.objects.get(role="assistant")
    assert (str(stored.pk), stored.text) == (end["message_id"], end["text"])
    assert Message.objects.filter(role="customer").count() == 1


@live
def test_the_outbox_resends_an_unacknowledged_message_once_with_the_same_id(web_server, page: Page) -> None:
    server = web_server(RATELIMIT_SESSION_IP="")
    client_page(page, server.http_url)
    page.evaluate("window.dropAcks = 1; client.connect(); client.send('Is this stored?')")
    wait_until(page, lambda: any(e["lost"] for e in page.evaluate("received")), "the lost ack")
    assert emitted(page, "ack") == []
    assert len(page.evaluate("client.outbox()")) == 1

    page.evaluate("client.reconnect()")
    wait_until(page, lambda: emitted(page, "ack"), "the ack of the re-sent message")
    page.wait_for_timeout(500)

    [queued] = emitted(page, "queued")
    sent = [f for f in page.evaluate("sent") if f["type"] == "message"]
    assert [f["client_msg_id"] for f in sent] == [queued["client_msg_id"]] * 2
    assert len(emitted(page, "ack")) == 1
    assert page.evaluate("client.outbox()") == []
    assert Message.objects.filter(role="customer").count() == 1
    customer_events = [e for e in emitted(page, "message") if e["message"]["role"] == "customer"]
    assert [e["message"]["text"] for e in customer_events] == ["Is this stored?"]


@live
def test_resume_after_a_reconnect_fills_what_was_missed(web_server, page: Page) -> None:
    server = web_server(ASSISTANT_TOKEN_DELAY_S="0", RATELIMIT_SESSION_IP="")
    client_page(page, server.http_url)
    page.evaluate("client.connect(); client.send('Do you ship abroad?')")
    wait_until(page, lambda: emitted(page, "message_end"), "the first answer")
    page.evaluate("client.close()")
    before = durable_seqs(page)

    # Stored while the client is away.
    conversation = beside_playwright(Conversation.objects.get)
    for title in ("Order KF-1001 shipped", "Order KF-1001 delivered"):
        beside_playwright(
            event_emit, conversation=conversation, type="update",
            payload={"kind": "order", "title": title, "body": "", "data": {}},
        )
    beside_playwright(message_create, conversation=conversation, role="assistant", text="Anything else?")
    page.wait_for_timeout(300)
    assert durable_seqs(page) == before  # closed: nothing arrives

    page.evaluate("client.connect()")
    wait_until(page, lambda: len(durable_seqs(page)) >= len(before) + 3, "the missed events")
    page.wait_for_timeout(500)

    resumes = [f for f in page.evaluate("sent") if f["type"] == "resume"]
    assert resumes[-1] == {"type": "resume", "conversation_id": str(conversation.pk), "last_seq": before[-1]}
    missed = emitted(page, *DURABLE)[len(before):]
    assert [(e["on"], e.get("title") or e.get("message", {}).get("text")) for e in missed] == [
        ("update", "Order KF-1001 shipped"),
        ("update", "Order KF-1001 delivered"),
        ("message", "Anything else?"),
    ]
    assert durable_seqs(page) == list(range(1, before[-1] + 4))
    assert emitted(page, "resumed")[-1]["interrupted"] == []


@live
def test_feedback_replaces_the_last_choice_and_one_made_offline_goes_out_after_resume(
    web_server, page: Page
) -> None:
    server = web_server(ASSISTANT_TOKEN_DELAY_S="0", RATELIMIT_SESSION_IP="")
    client_page(page, server.http_url)
    page.evaluate("client.connect(); client.send('Do you ship abroad?')")
    wait_until(page, lambda: emitted(page, "message_end"), "the answer")
    [end] = emitted(page, "message_end")
    answer, conversation = end["message_id"], end["conversation_id"]
    stored = lambda: list(MessageFeedback.objects.values_list("message_id", "helpful", "comment"))  # noqa: E731

    assert page.evaluate(f"client.feedback({answer!r}, false, '  Too vague.  ')") is True
    wait_until(page, lambda: stored() == [(UUID(answer), False, "Too vague.")], "the thumbs down")

    page.evaluate("client.close()")
    assert page.evaluate(f"client.feedback({answer!r}, true)") is False  # offline: kept for later
    assert page.evaluate(f"client.feedbackGiven({answer!r})") == {"helpful": True, "comment": ""}
    page.evaluate("client.connect()")
    wait_until(page, lambda: stored() == [(UUID(answer), True, "")], "the thumbs up made offline")

    frames = [f for f in page.evaluate("sent") if f["type"] in ("feedback", "resume")]
    # The first socket had no conversation to resume; the second sends what was kept after its resume.
    assert [f["type"] for f in frames] == ["feedback", "resume", "feedback"]
    assert [f for f in frames if f["type"] == "feedback"] == [
        {"type": "feedback", "conversation_id": conversation, "message_id": answer, "helpful": False,
         "comment": "Too vague."},
        {"type": "feedback", "conversation_id": conversation, "message_id": answer, "helpful": True},
    ]
    # A reload finds the choice (the view shows it); another person signing in does not.
    assert page.evaluate(f"new KefuClient({{ baseUrl: {server.http_url!r} }}).feedbackGiven({answer!r})") == {
        "helpful": True, "comment": ""}
    someone_else = f"new KefuClient({{ baseUrl: {server.http_url!r}, userId: 'crm-9' }})"
    assert page.evaluate(f"{someone_else}.feedbackGiven({answer!r})") is None
