"""/console/reports/ over HTTP: who sees it, what its tables say, and their CSV downloads."""

from __future__ import annotations

import csv
import io

import pytest
from django.test import Client

from tests.support.people import make_user

pytestmark = pytest.mark.django_db(transaction=True)

CUSTOM = {"period": "custom", "start": "2026-11-02", "end": "2026-11-02"}


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def rows_of(response) -> list[list[str]]:
    return list(csv.reader(io.StringIO(response.content.decode())))


def test_signed_out_visitors_go_to_the_login_and_customers_are_refused() -> None:
    response = Client().get("/console/reports/")
    assert response.status_code == 302 and response["Location"].startswith("/console/login/")
    shopper = make_user("shopper@example.com", "Sam", "Shopper", staff=False)
    assert client_for(shopper).get("/console/reports/").status_code == 403
    assert client_for(shopper).get("/console/reports/csv/daily/").status_code == 403


def test_the_page_shows_the_headline_figures_and_tables(histories, supervisor) -> None:
    response = client_for(supervisor).get("/console/reports/", CUSTOM)
    assert response.status_code == 200
    html = response.content.decode()
    assert "66.7%" in html  # AI resolution rate: 2 of 3
    assert "5m 00s / 5m 00s" not in html and "5m 00s / 1h 00m" in html  # FRT p50 / p90
    assert "4.00 / 5" in html
    assert 'href="/console/reports/csv/daily/?period=custom' in html
    assert "/console/reports/assets/vendor/chart.umd.min.js" in html


def test_csv_downloads_hold_the_tables(histories, supervisor, alice) -> None:
    client = client_for(supervisor)
    daily = client.get("/console/reports/csv/daily/", CUSTOM)
    assert daily["Content-Type"] == "text/csv; charset=utf-8"
    assert daily["Content-Disposition"] == 'attachment; filename="kefu-daily-2026-11-02.csv"'
    assert rows_of(daily) == [
        [
            "Day",
            "Conversations",
            "AI involved",
            "AI resolved",
            "AI resolution rate",
            "Handovers",
            "Avg first response (s)",
            "CSAT avg",
            "SLA met",
            "SLA breached",
        ],
        ["2026-11-02", "5", "3", "2", "66.7%", "2", "1950", "4.0", "1", "1"],
    ]
    assert rows_of(client.get("/console/reports/csv/csat/", CUSTOM))[1:] == [
        ["1", "0"],
        ["2", "0"],
        ["3", "1"],
        ["4", "0"],
        ["5", "1"],
    ]
    assert rows_of(client.get("/console/reports/csv/frt/", CUSTOM))[1:] == [
        ["< 1 min", "0"],
        ["1–5 min", "0"],
        ["5–15 min", "1"],
        ["15–60 min", "0"],
        ["1–4 h", "1"],
        ["≥ 4 h", "0"],
    ]
    agents = rows_of(client.get("/console/reports/csv/agents/", CUSTOM))
    assert sorted(row[:2] for row in agents[1:]) == [
        ["Alice Agent", "1"],
        ["Bob Agent", "1"],
        ["Unassigned", "3"],
    ]
    hours = rows_of(client.get("/console/reports/csv/hours/", CUSTOM))
    assert hours[0] == ["Hour (UTC)", "Conversations"] and hours[10] == ["09:00", "5"]
    assert client.get("/console/reports/csv/nope/", CUSTOM).status_code == 404


def test_an_agent_downloads_only_their_own_rows(histories, alice, shipping) -> None:
    client = client_for(alice)
    agents = rows_of(client.get("/console/reports/csv/agents/", CUSTOM))
    assert [row[:2] for row in agents[1:]] == [["Alice Agent", "1"]]
    # Another team is not among an agent's choices: the filter falls back to their own figures.
    teams = rows_of(client.get("/console/reports/csv/teams/", {**CUSTOM, "team": shipping.pk}))
    assert [row[:2] for row in teams[1:]] == [["Billing", "1"]]
    assert "Agent</label>" not in client.get("/console/reports/", CUSTOM).content.decode()


def test_names_in_the_tables_are_escaped(histories, supervisor, billing) -> None:
    # The tables' cells are written by apps/reports/views.py, not by template tags.
    type(billing).objects.filter(pk=billing.pk).update(name="<script>alert(1)</script> & Co")
    html = client_for(supervisor).get("/console/reports/", CUSTOM).content.decode()
    assert "<script>alert(1)</script>" not in html
    assert "<td>&lt;script&gt;alert(1)&lt;/script&gt; &amp; Co</td><td>3</td>" in html
