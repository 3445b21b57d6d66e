"""A supervisor's console in headless Chromium: a waiting conversation's first-response clock
counts down in the queue, amber near due, and turns red live when the breach task runs.

Screenshots are kept in the test's tmp dir (and copied to KEFU_SCREENS_DIR when that is set)."""

from __future__ import annotations

import re
import uuid
from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import Page, expect

from apps.console.queue import queue_entry_publish
from apps.console.roles import role_join
from apps.conversations.services import conversation_request_human, message_create
from apps.sla.models import SlaClock, SlaPolicy
from apps.sla.tasks import sla_breaches_check_task
from tests.support.browser import beside_playwright, console_sign_in, screenshot
from tests.support.factories import ConversationFactory, CustomerFactory
from tests.support.people import make_user

pytestmark = [pytest.mark.browser, pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def seed() -> str:
    """Sue the supervisor, and Ada, who just asked for a person: 5 min to a first response."""
    role_join(user=make_user("sue@example.com", "Sue", "Supervisor"), role="supervisor")
    SlaPolicy.objects.create(first_response_s=300, resolution_s=3600)
    conversation = ConversationFactory(customer=CustomerFactory(name="Ada Lovelace"))
    message_create(
        conversation=conversation, role="customer", text="I need a person", client_msg_id=uuid.uuid4()
    )
    conversation_request_human(conversation_id=conversation.pk)
    return str(conversation.pk)


def almost_due(conversation_id: str) -> None:
    """Fast-forward: 3 s of the 5 min left (the queue entry is sent again, as a change would)."""
    now = timezone.now()
    SlaClock.objects.filter(conversation_id=conversation_id, kind="first_response").update(
        started_at=now - timedelta(seconds=297), due_at=now + timedelta(seconds=3)
    )
    queue_entry_publish(conversation_id=conversation_id)


def test_the_queue_clock_counts_down_and_turns_red_when_the_breach_task_runs(
    web_server, page: Page, tmp_path
) -> None:
    conversation_id = beside_playwright(seed)
    server = web_server()

    page.goto(f"{server.http_url}/console/")
    console_sign_in(page, "sue@example.com")
    expect(page.locator("#kf-conn")).to_have_text("Live · Sue Supervisor")

    clock = page.locator(f'.kf-queue-item[data-id="{conversation_id}"] .kf-q-sla')
    expect(clock).to_have_text(re.compile(r"^Reply in 04:[0-5]\d$"))  # 5 min, counting down
    expect(clock).to_have_attribute("data-sla", "ok")
    screenshot(page, tmp_path, "sla-running")

    beside_playwright(almost_due, conversation_id=conversation_id)
    expect(clock).to_have_text(re.compile(r"^Reply in 00:0[0-3]$"))
    expect(clock).to_have_attribute("data-sla", "amber")  # under 20% of the target left
    screenshot(page, tmp_path, "sla-amber")

    # The due time passes in the browser; only the server's breach makes it red.
    expect(clock).to_have_text(re.compile(r"^Reply overdue 00:0\d$"))
    expect(clock).to_have_attribute("data-sla", "amber")

    assert beside_playwright(sla_breaches_check_task) == 1
    expect(clock).to_have_attribute("data-sla", "breached")
    expect(clock).to_have_css("background-color", "rgb(217, 45, 32)")
    expect(clock).to_have_attribute("title", "SLA breached")
    print(screenshot(page, tmp_path, "sla-breached"))
