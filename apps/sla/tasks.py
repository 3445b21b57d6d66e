"""Celery tasks of SLA: run by beat (CELERY_BEAT_SCHEDULE), idempotent, safe to run twice."""

from __future__ import annotations

from celery import shared_task

from .services import sla_breaches_mark


@shared_task(acks_late=True, soft_time_limit=30, time_limit=60, ignore_result=True)
def sla_breaches_check_task() -> int:
    """Mark overdue clocks breached and tell the agents; the number marked."""
    return len(sla_breaches_mark())
