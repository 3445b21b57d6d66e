"""Celery tasks for tool calls: take an id, call the service, retry with its backoff."""

from __future__ import annotations

from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings

from .services import tool_call_execute, tool_call_give_up


@shared_task(
    bind=True,
    name="connectors.tool_call_run",
    acks_late=True,
    reject_on_worker_lost=True,
    max_retries=None,
    soft_time_limit=settings.CONNECTORS_TASK_SOFT_TIME_LIMIT_S,
    time_limit=settings.CONNECTORS_TASK_TIME_LIMIT_S,
)
def tool_call_run_task(self, call_id: str) -> None:
    try:
        retry_in = tool_call_execute(call_id=call_id, task_id=self.request.id or "")
    except SoftTimeLimitExceeded:
        tool_call_give_up(call_id=call_id, reason="the task hit its time limit")
        return
    if retry_in is not None:
        # The row counts the tries (connector.max_attempts); the service decides when to stop.
        raise self.retry(countdown=retry_in)


@shared_task(name="connectors.noop", acks_late=True)
def noop_task() -> str:
    """A bare round trip through the broker and a worker (bench/tools.py's baseline)."""
    return "ok"
