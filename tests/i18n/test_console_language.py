"""The console's language switch (POST /console/language/): it saves the agent's choice and the
language cookie, refuses what is not a supported language, never redirects off the site, and is
for signed-in staff with a CSRF token only."""

from __future__ import annotations

import pytest
from django.test import Client

from apps.console.language import agent_language_get
from tests.support.people import make_user

pytestmark = pytest.mark.django_db


def signed_in(username: str, *, staff: bool = True, csrf: bool = False) -> tuple[Client, object]:
    user = make_user(username, "Mei", "Lin", staff=staff)
    client = Client(enforce_csrf_checks=csrf)
    client.force_login(user)
    return client, user


def test_the_choice_is_saved_and_an_outside_next_lands_on_the_console() -> None:
    client, mei = signed_in("mei@example.com")
    response = client.post("/console/language/", {"language": "zh-CN", "next": "https://evil.example/x"})
    assert (response.status_code, response["Location"]) == (302, "/console/")
    assert response.cookies["django_language"].value == "zh-hans"
    assert agent_language_get(user_id=mei.pk) == "zh-hans"

    response = client.post("/console/language/", {"language": "en", "next": "/console/reports/"})
    assert response["Location"] == "/console/reports/"
    assert agent_language_get(user_id=mei.pk) == "en"


def test_an_unsupported_language_follows_the_browser_again() -> None:
    client, mei = signed_in("mei@example.com")
    client.post("/console/language/", {"language": "zh-hans"})
    response = client.post("/console/language/", {"language": "klingon"})
    assert agent_language_get(user_id=mei.pk) == ""
    assert response.cookies["django_language"].value == ""  # deleted


def test_only_staff_with_a_csrf_token_may_switch() -> None:
    customer_like, _ = signed_in("shopper@example.com", staff=False)
    assert customer_like.post("/console/language/", {"language": "zh-hans"}).status_code == 403
    assert Client().post("/console/language/", {"language": "zh-hans"}).status_code == 403
    agent, mei = signed_in("mei@example.com", csrf=True)
    assert agent.post("/console/language/", {"language": "zh-hans"}).status_code == 403
    assert agent_language_get(user_id=mei.pk) == ""
    assert agent.get("/console/language/").status_code == 405
