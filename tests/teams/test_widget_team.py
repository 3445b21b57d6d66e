"""The widget's `team` setting (kefu-client.js's `team` option, `data-team` on the widget's
tag) goes out in `auth` and routes the conversation the page starts. Chromium, real server."""

from __future__ import annotations

import time

import pytest
from playwright.sync_api import Page

from apps.conversations.models import Conversation
from apps.teams.models import Team
from tests.support.browser import beside_playwright


def _teams() -> None:
    Team.objects.create(name="Support", slug="support")
    Team.objects.create(name="Billing", slug="billing")


def _team_names() -> list[str | None]:
    return [c.team and c.team.name for c in Conversation.objects.select_related("team")]


@pytest.mark.browser
@pytest.mark.e2e
@pytest.mark.django_db(transaction=True)
def test_the_clients_team_option_routes_the_conversation_it_starts(web_server, page: Page) -> None:
    beside_playwright(_teams)
    server = web_server(RATELIMIT_SESSION_IP="")
    script_url = f"{server.http_url}/widget/kefu-client.js"
    page.goto(script_url)  # a same-origin document (see tests/widget/test_client.py)
    page.add_script_tag(url=script_url)
    page.evaluate(
        """(base) => {
          window.acks = [];
          window.client = new KefuClient({ baseUrl: base, team: "billing" });
          client.on("ack", (e) => acks.push(e));
          client.connect(); client.send("Hello");
        }""",
        server.http_url,
    )
    deadline = time.monotonic() + 30
    while not page.evaluate("acks.length") and time.monotonic() < deadline:
        page.wait_for_timeout(50)
    assert page.evaluate("acks.length") == 1
    assert beside_playwright(_team_names) == ["Billing"]
