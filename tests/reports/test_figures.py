"""Each figure of the reports on hand-made histories with known answers (tests/reports/conftest.py),
kept current by the publisher's listener as the services run, and equal to a full rebuild."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from apps.reports.facts import ROLLUP_SUMS, contribution, facts_refresh, facts_sweep, rollups_rebuild
from apps.reports.models import ConversationFact, HourlyRollup
from apps.reports.selectors import Scope, summary

from .history import T0, Step, Story, build

pytestmark = pytest.mark.django_db(transaction=True)

DAY = Scope(since=T0 - timedelta(hours=1), until=T0 + timedelta(days=1))


def test_summary_of_the_day_has_the_known_figures(histories) -> None:
    assert summary(DAY) == {
        "since": "2026-11-02T08:00:00+00:00",
        "until": "2026-11-03T09:00:00+00:00",
        "conversations": 5,
        "ai_involved": 3,
        "ai_resolved": 2,  # A closed, B idle 24 h; C was handed over
        "ai_resolution_rate": 0.6667,
        "handovers": 2,
        "first_response_s": {"p50": 300, "p90": 3600},
        "resolution_s": {"p50": 600, "p90": 1800},
        "csat": {"count": 2, "average": 4.0},
        "sla": {"met": 1, "breached": 1},
        "feedback": {"helpful": 1, "unhelpful": 1},
    }


def test_team_and_agent_filters_and_partial_hours(histories, billing, bob) -> None:
    billing_day = summary(Scope(since=DAY.since, until=DAY.until, team_id=billing.pk))
    assert (billing_day["conversations"], billing_day["ai_resolved"], billing_day["handovers"]) == (3, 2, 1)
    assert billing_day["first_response_s"] == {"p50": 300, "p90": 300}
    bobs = summary(Scope(since=DAY.since, until=DAY.until, agent_id=bob.pk))
    assert (bobs["conversations"], bobs["ai_involved"], bobs["ai_resolution_rate"]) == (1, 0, None)
    assert bobs["sla"] == {"met": 0, "breached": 1}
    # A window that starts and ends inside hours (facts for the edges, rollups between).
    odd = summary(Scope(since=T0 - timedelta(minutes=1), until=T0 + timedelta(seconds=1)))
    assert odd["conversations"] == 5
    assert (
        summary(Scope(since=T0 + timedelta(seconds=1), until=T0 + timedelta(hours=3)))["conversations"] == 0
    )


def test_an_empty_period_has_null_rates() -> None:
    empty = summary(DAY)
    assert empty["conversations"] == 0
    assert empty["ai_resolution_rate"] is None
    assert empty["first_response_s"] == {"p50": None, "p90": None}
    assert empty["csat"] == {"count": 0, "average": None}


def test_the_idle_rule_resolves_a_quiet_conversation_after_24_hours(billing) -> None:
    now = timezone.now()
    story = Story([Step(0, "customer"), Step(1, "assistant")], start=now - timedelta(hours=2), team=billing)
    conversation = build(story)
    window = Scope(since=now - timedelta(days=1), until=now + timedelta(hours=1))
    assert (summary(window)["ai_involved"], summary(window)["ai_resolved"]) == (1, 0)
    assert facts_sweep(now=now) == 0  # not idle for 24 h yet
    assert facts_sweep(now=now + timedelta(hours=23)) == 1  # last message at -2 h + 1 min
    assert summary(window)["ai_resolved"] == 1
    assert ConversationFact.objects.get(conversation=conversation).ai_resolved is True


def _rollups() -> set[tuple]:
    names = ["hour", "team_id", "agent_id", *ROLLUP_SUMS]
    return set(HourlyRollup.objects.values_list(*names))


def _facts() -> set[tuple]:
    names = [f.attname for f in ConversationFact._meta.concrete_fields if f.name != "refreshed_at"]
    return set(ConversationFact.objects.values_list(*names))


def test_incremental_rollups_equal_a_full_recomputation(histories, billing, alice, bob) -> None:
    # More history on top: a transfer moves D to another agent's rollup row, a rating changes,
    # one more conversation three days later is handed over.
    from apps.console.roles import role_join
    from apps.console.services import conversation_assign
    from apps.conversations.services import conversation_rate

    role_join(user=alice, role="supervisor")
    d = histories["D"]
    conversation_assign(conversation_id=d.pk, agent_id=alice.pk, by=alice)
    conversation_rate(conversation_id=histories["C"].pk, score=4)
    extra = build(
        Story(
            [Step(0, "customer"), Step(3, "assistant"), Step(4, "human")],
            start=T0 + timedelta(days=3, minutes=17),
            team=billing,
        )
    )
    facts_refresh(ids=[extra.pk])
    now = timezone.now()
    facts_sweep(now=now)
    incremental_rollups, incremental_facts = _rollups(), _facts()
    assert incremental_rollups and len(incremental_facts) == 6

    rebuilt = rollups_rebuild(now=now)
    assert rebuilt["facts"] == 6
    assert _facts() == incremental_facts
    assert _rollups() == incremental_rollups


def test_the_python_contribution_matches_the_sql_sums(histories) -> None:
    from django.db import connection

    sums = ", ".join(f"{expr}" for expr in ROLLUP_SUMS.values())
    for fact in ConversationFact.objects.all():
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT {sums} FROM reports_conversationfact WHERE conversation_id = %s", [fact.pk]
            )
            sql = dict(zip(ROLLUP_SUMS, cursor.fetchone(), strict=True))
        values = {f.attname: getattr(fact, f.attname) for f in ConversationFact._meta.concrete_fields}
        assert contribution(values) == sql
