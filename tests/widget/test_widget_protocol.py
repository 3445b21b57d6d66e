"""The widget's side of PROTOCOL.md §2 against a scripted server (tests/support/fake_kefu.py):
the cases a real server shows only when something goes wrong at the right moment."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, WebSocketRoute, expect

from tests.support.fake_kefu import BASE, FakeKefu, Frame

pytestmark = pytest.mark.browser


@pytest.fixture
def kefu(page: Page) -> FakeKefu:
    return FakeKefu(page)


def open_widget(page: Page) -> None:
    page.goto(f"{BASE}/")
    page.get_by_role("button", name="Open chat").click()


def type_message(page: Page, text: str) -> None:
    box = page.get_by_role("textbox", name="Message")
    box.fill(text)
    box.press("Enter")


def texts(page: Page, role: str = "assistant"):
    return page.locator(f".kefu-from-{role} .kefu-text")


def test_an_expired_token_gets_a_new_session(page: Page, kefu: FakeKefu) -> None:
    def reject_first_token(socket: WebSocketRoute, frame: Frame) -> bool:
        # (`auth` also carries the page's language: only the token matters here)
        if (frame.get("type"), frame.get("token")) == ("auth", "token-1"):
            socket.close(code=4401, reason="token expired")
            return True
        return False

    kefu.react = reject_first_token
    open_widget(page)

    kefu.wait_for_frame(lambda f: (f.get("type"), f.get("token")) == ("auth", "token-2"))
    expect(page.locator(".kefu-banner")).to_be_hidden()
    assert kefu.sessions == 2
    assert (
        page.evaluate("JSON.parse(localStorage.getItem('kefu:http://kefu.test:session')).token") == "token-2"
    )


def test_replayed_and_early_events_show_once_and_in_order(page: Page, kefu: FakeKefu) -> None:
    kefu.conversation_id = "conv-1"
    kefu.react = lambda socket, frame: frame["type"] == "resume"  # the test answers resume itself
    open_widget(page)
    resume = kefu.wait_for_frame(lambda f: f["type"] == "resume")
    assert resume == {"type": "resume", "conversation_id": "conv-1", "last_seq": 0}

    for event in (
        kefu.message(1, "one"),
        kefu.message(2, "two"),
        kefu.message(4, "four"),  # ahead of 3: held back until 3 arrives
        kefu.message(3, "three"),
        kefu.message(2, "two"),  # a live copy overlapping the replay
        {"type": "resumed", "conversation_id": "conv-1", "last_seq": 4},
        kefu.message(4, "four"),
        kefu.message(1, "one", conversation_id="conv-other"),  # not the conversation on screen
    ):
        kefu.send(event)

    expect(texts(page)).to_have_text(["one", "two", "three", "four"])
    kefu.send(kefu.message(5, "five"))
    expect(texts(page)).to_have_text(["one", "two", "three", "four", "five"])


def test_a_message_the_server_never_acknowledged_survives_a_reload(page: Page, kefu: FakeKefu) -> None:
    kefu.ack_messages = False
    open_widget(page)
    type_message(page, "Is this stored?")
    first = kefu.wait_for_frame(lambda f: f["type"] == "message")
    expect(page.locator(".kefu-pending")).to_have_text(["Is this stored?Sending\u2026"])

    kefu.ack_messages = True
    page.reload()

    # Re-sent with the same client_msg_id (the server stores it once), then acknowledged. (The
    # reloaded page may show the outbox before its socket is ready: wait for the frame itself.)
    kefu.wait_for_frame(lambda f: f["type"] == "message" and f is not first)
    expect(page.locator(".kefu-pending")).to_have_count(0)
    expect(texts(page, "customer")).to_have_text(["Is this stored?"])
    sent = kefu.frames_of("message")
    assert [f["client_msg_id"] for f in sent] == [first["client_msg_id"]] * 2
    assert page.evaluate("localStorage.getItem('kefu:http://kefu.test:outbox')") == "[]"


def test_streaming_tools_handoff_updates_and_survey(page: Page, kefu: FakeKefu) -> None:
    kefu.conversation_id = "conv-1"
    open_widget(page)
    kefu.wait_for_frame(lambda f: f["type"] == "resume")
    stop = page.get_by_role("button", name="Stop answering")

    kefu.send(
        {
            "type": "tool",
            "conversation_id": "conv-1",
            "seq": 1,
            "call_id": "c1",
            "name": "order_lookup",
            "status": "running",
            "detail": "Looking up your order\u2026",
        }
    )
    kefu.send({"type": "token", "conversation_id": "conv-1", "message_id": "a1", "text": "Your order "})
    kefu.send({"type": "token", "conversation_id": "conv-1", "message_id": "a1", "text": "ships"})
    expect(texts(page)).to_have_text(["Your order ships"])
    expect(stop).to_be_visible()
    stop.click()
    assert kefu.wait_for_frame(lambda f: f["type"] == "stop") == {"type": "stop", "conversation_id": "conv-1"}
    kefu.send(
        {"type": "partial", "conversation_id": "conv-1", "message_id": "a1", "text": "Your order ships today"}
    )
    kefu.send(
        {
            "type": "tool",
            "conversation_id": "conv-1",
            "seq": 2,
            "call_id": "c1",
            "name": "order_lookup",
            "status": "succeeded",
            "detail": "Looking up your order\u2026",
        }
    )
    kefu.send(
        {
            "type": "message_end",
            "conversation_id": "conv-1",
            "seq": 3,
            "message_id": "a1",
            "text": "Your order ships today.",
            "citations": [],
            "stopped": True,
        }
    )

    expect(texts(page)).to_have_text(["Your order ships today."])
    expect(page.locator(".kefu-from-assistant .kefu-meta")).to_have_text(["Stopped"])
    expect(stop).to_be_hidden()
    expect(page.locator(".kefu-tool")).to_have_text(["Looking up your order\u2026done"])

    page.get_by_role("button", name="Talk to a person").click()
    assert kefu.wait_for_frame(lambda f: f["type"] == "request_human")["conversation_id"] == "conv-1"
    kefu.send({"type": "handoff", "conversation_id": "conv-1", "seq": 4, "state": "human", "agent": "Maria"})
    expect(page.get_by_text("Maria joined the conversation.")).to_be_visible()
    expect(page.get_by_role("button", name="Talk to a person")).to_be_hidden()
    kefu.send({"type": "typing", "conversation_id": "conv-1", "role": "agent", "on": True})
    expect(page.locator(".kefu-typing")).to_have_text("Maria is typing\u2026")

    kefu.send(
        {
            "type": "update",
            "conversation_id": "conv-1",
            "seq": 5,
            "kind": "order.shipped",
            "title": "Order KF-1001 shipped",
            "body": "Arrives Friday.",
            "data": {},
        }
    )
    kefu.send({"type": "csat_request", "conversation_id": "conv-1", "seq": 6, "question": "How did we do?"})
    expect(page.locator(".kefu-card .kefu-card-title")).to_have_text(
        ["Order KF-1001 shipped", "How did we do?"]
    )
    page.get_by_role("button", name="4 out of 5").click()

    assert kefu.wait_for_frame(lambda f: f["type"] == "csat") == {
        "type": "csat",
        "conversation_id": "conv-1",
        "score": 4,
    }
    expect(page.get_by_text("Thanks for your feedback!")).to_be_visible()


def test_typing_and_heartbeat_frames(page: Page, kefu: FakeKefu) -> None:
    kefu.conversation_id = "conv-1"
    kefu.heartbeat_s = 1
    open_widget(page)
    kefu.wait_for_frame(lambda f: f["type"] == "resume")

    page.get_by_role("textbox", name="Message").press_sequentially("hel")

    typing = kefu.wait_for_frame(lambda f: f["type"] == "typing")
    assert typing == {"type": "typing", "conversation_id": "conv-1", "on": True}
    assert kefu.wait_for_frame(lambda f: f["type"] == "ping")["ts"] > 0
    assert kefu.wait_for_frame(lambda f: f["type"] == "typing" and not f["on"])["conversation_id"] == "conv-1"
