"""Keeping the rollups current: the listener's per-process batch (refreshed a moment later, or by
a flush), the sweep that catches what a dead process never refreshed, and conversations that are
deleted. After each, the rollups equal a full recomputation."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from apps.conversations.models import Conversation
from apps.conversations.services import conversation_rate
from apps.core.runtime import runtime
from apps.reports.facts import ROLLUP_SUMS, facts_forget, facts_refresh, facts_sweep, rollups_rebuild
from apps.reports.models import ConversationFact, HourlyRollup
from apps.reports.pending import facts_pending_flush, pending
from apps.reports.selectors import Scope, summary

from .history import T0

pytestmark = pytest.mark.django_db(transaction=True)

DAY = Scope(since=T0 - timedelta(hours=1), until=T0 + timedelta(days=1))


@pytest.fixture
def batched(settings):
    """The listener batches for ten minutes: nothing is refreshed unless flushed or closed."""
    settings.REPORTS_REFRESH_DELAY_S = 600
    yield pending()
    pending().close()
    runtime().forget("reports.pending")


def _state() -> tuple[set[tuple], set[tuple]]:
    rollups = set(HourlyRollup.objects.values_list("hour", "team_id", "agent_id", *ROLLUP_SUMS))
    names = [f.attname for f in ConversationFact._meta.concrete_fields if f.name != "refreshed_at"]
    return rollups, set(ConversationFact.objects.values_list(*names))


def assert_equal_to_a_rebuild() -> None:
    kept = _state()
    rollups_rebuild()
    assert _state() == kept


def test_the_batch_refreshes_on_flush_and_equals_a_rebuild(histories, batched) -> None:
    conversation_rate(conversation_id=histories["C"].pk, score=5)  # was 3
    conversation_rate(conversation_id=histories["A"].pk, score=1)  # was 5
    assert len(batched) == 2
    assert summary(DAY)["csat"] == {"count": 2, "average": 4.0}  # not refreshed yet
    assert facts_pending_flush() == 2
    assert len(batched) == 0
    assert summary(DAY)["csat"] == {"count": 2, "average": 3.0}
    ratings = [sum(HourlyRollup.objects.values_list(f"csat_{k}", flat=True)) for k in range(1, 6)]
    assert ratings == [1, 0, 0, 0, 1]
    assert_equal_to_a_rebuild()


def test_stopping_the_process_refreshes_what_is_pending(histories, batched) -> None:
    conversation_rate(conversation_id=histories["C"].pk, score=1)  # was 3
    assert summary(DAY)["csat"] == {"count": 2, "average": 4.0}
    batched.close()  # as the runtime does when the process stops
    assert summary(DAY)["csat"] == {"count": 2, "average": 3.0}
    assert_equal_to_a_rebuild()


def test_the_sweep_refreshes_what_a_dead_process_never_did(histories, batched) -> None:
    conversation_rate(conversation_id=histories["A"].pk, score=2)  # was 5
    dead = runtime().forget("reports.pending")  # the process died with its batch ...
    dead._ids.clear()  # ... and the batch with it (its thread stops here, refreshing nothing)
    dead.close()
    assert summary(DAY)["csat"] == {"count": 2, "average": 4.0}
    now = timezone.now()
    assert facts_sweep(now=now, sla_since=now - timedelta(minutes=20)) == 1
    assert summary(DAY)["csat"] == {"count": 2, "average": 2.5}
    assert_equal_to_a_rebuild()


def test_a_deleted_conversation_leaves_the_rollups(histories) -> None:
    # Forgotten in the deleting transaction (what retention or erasure would call) ...
    assert facts_forget(conversation_ids=[histories["A"].pk]) == 1
    Conversation.objects.filter(pk=histories["A"].pk).delete()
    day = summary(DAY)
    assert (day["conversations"], day["ai_resolved"], day["csat"]) == (4, 1, {"count": 1, "average": 3.0})
    assert_equal_to_a_rebuild()
    # ... or deleted first: the fact outlives its conversation, and a refresh of the id subtracts it.
    Conversation.objects.filter(pk=histories["D"].pk).delete()
    assert ConversationFact.objects.filter(conversation_id=histories["D"].pk).exists()
    assert facts_refresh(ids=[histories["D"].pk]) == 1
    day = summary(DAY)
    assert (day["conversations"], day["handovers"], day["sla"]) == (3, 1, {"met": 1, "breached": 0})
    assert_equal_to_a_rebuild()
    assert facts_forget(conversation_ids=[histories["D"].pk]) == 0  # nothing left to forget
