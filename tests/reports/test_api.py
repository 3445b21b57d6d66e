"""GET /api/reports/summary over HTTP: who may read which figures, and the answer's shape."""

from __future__ import annotations

import pytest
from django.test import Client

from tests.support.people import make_user

pytestmark = pytest.mark.django_db(transaction=True)

DAY = {"since": "2026-11-02T08:00:00Z", "until": "2026-11-03T09:00:00Z"}


def client_for(user=None) -> Client:
    client = Client()
    if user is not None:
        client.force_login(user)
    return client


def test_no_credentials_is_401_and_a_wrong_token_403(settings, histories) -> None:
    settings.REPORTS_TOKEN = "s3cret-reports"
    response = Client().get("/api/reports/summary", DAY)
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == 'Bearer realm="reports"'
    wrong = Client().get("/api/reports/summary", DAY, HTTP_AUTHORIZATION="Bearer s3cret-report")
    assert wrong.status_code == 403
    right = Client().get("/api/reports/summary", DAY, HTTP_AUTHORIZATION="Bearer s3cret-reports")
    assert right.status_code == 200
    assert right.json()["conversations"] == 5


def test_an_empty_token_setting_turns_the_bearer_off(settings, histories) -> None:
    settings.REPORTS_TOKEN = ""
    assert Client().get("/api/reports/summary", DAY, HTTP_AUTHORIZATION="Bearer ").status_code == 403
    assert Client().get("/api/reports/summary", DAY, HTTP_AUTHORIZATION="Bearer x").status_code == 403


def test_a_signed_in_customer_who_is_not_staff_is_refused(histories) -> None:
    shopper = make_user("shopper@example.com", "Sam", "Shopper", staff=False)
    assert client_for(shopper).get("/api/reports/summary", DAY).status_code == 403


def test_a_supervisor_sees_every_team(histories, supervisor, shipping) -> None:
    client = client_for(supervisor)
    assert client.get("/api/reports/summary", DAY).json()["conversations"] == 5
    answer = client.get("/api/reports/summary", {**DAY, "team": shipping.pk}).json()
    assert (answer["conversations"], answer["handovers"], answer["first_response_s"]) == (
        2,
        1,
        {"p50": 3600, "p90": 3600},
    )


def test_an_agent_sees_only_their_own_figures(histories, alice, bob, billing, shipping) -> None:
    client = client_for(alice)
    own = client.get("/api/reports/summary", DAY).json()
    assert (own["conversations"], own["handovers"], own["first_response_s"]["p50"]) == (1, 1, 300)
    assert client.get("/api/reports/summary", {**DAY, "team": billing.pk}).json()["conversations"] == 1
    assert client.get("/api/reports/summary", {**DAY, "team": shipping.pk}).status_code == 403
    assert client.get("/api/reports/summary", {**DAY, "agent": bob.pk}).status_code == 403
    assert client.get("/api/reports/summary", {**DAY, "agent": alice.pk}).status_code == 200


def test_unreadable_bounds_are_400(supervisor) -> None:
    client = client_for(supervisor)
    assert (
        client.get("/api/reports/summary", {"since": "yesterday", "until": DAY["until"]}).status_code == 400
    )
    assert client.get("/api/reports/summary", {"until": DAY["until"]}).status_code == 400
    assert (
        client.get("/api/reports/summary", {"since": DAY["until"], "until": DAY["since"]}).status_code == 400
    )
    dates = client.get("/api/reports/summary", {"since": "2026-11-02", "until": "2026-11-03"}).json()
    assert (dates["since"], dates["until"]) == ("2026-11-02T00:00:00+00:00", "2026-11-03T00:00:00+00:00")
