"""Scheduled report work (Celery beat; entries in CELERY_BEAT_SCHEDULE):

- `reports.facts_sweep` every 10 minutes: the resolution-rate rule (an involved conversation
  idle for 24 h with no handover counts as resolved by the assistant) and SLA clocks that
  changed without a conversation event;
- `reports.rollups_rebuild` nightly: every fact and rollup recomputed from the conversations.
"""

from __future__ import annotations

from datetime import timedelta

from celery import shared_task
from django.utils import timezone

from .facts import facts_sweep, rollups_rebuild

SWEEP_EVERY_S = 600


@shared_task(name="reports.facts_sweep", acks_late=True, time_limit=540, soft_time_limit=500)
def facts_sweep_task() -> int:
    now = timezone.now()
    # Twice the interval: a late or skipped run still sees every clock change once.
    return facts_sweep(now=now, sla_since=now - timedelta(seconds=2 * SWEEP_EVERY_S))


@shared_task(name="reports.rollups_rebuild", acks_late=True, time_limit=3600, soft_time_limit=3500)
def rollups_rebuild_task() -> dict[str, int]:
    return rollups_rebuild()
