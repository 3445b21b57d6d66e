from __future__ import annotations

from celery import shared_task

from .retention import retention_run


@shared_task(acks_late=True)
def retention_run_task() -> dict[str, int]:
    """Celery beat's `privacy-retention` entry: idempotent, safe to run twice."""
    run = retention_run()
    return {
        "audit_deleted": run.audit_deleted,
        "conversations_anonymised": run.conversations_anonymised,
        "customers_erased": run.customers_erased,
    }
