"""A transactional test ends with pytest-django flushing every table (one TRUNCATE). Work the
test started may still be writing then — a deferred listener (the reports' facts, outgoing
webhooks) on a database thread, or a server process finishing an answer — and Postgres may
resolve the lock cycle by aborting the TRUNCATE ("deadlock detected"). The flush is retried
then, after the other side committed; anything else fails as before."""

from __future__ import annotations

import time

from django.db import OperationalError
from django.db.backends.postgresql.operations import DatabaseOperations

ATTEMPTS = 5
PAUSE_S = 0.2

_execute_sql_flush = DatabaseOperations.execute_sql_flush


def _execute_sql_flush_retried(self: DatabaseOperations, sql_list: list[str]) -> None:
    for attempt in range(1, ATTEMPTS + 1):
        try:
            return _execute_sql_flush(self, sql_list)
        except OperationalError as exc:
            if "deadlock detected" not in str(exc) or attempt == ATTEMPTS:
                raise
            time.sleep(PAUSE_S * attempt)


DatabaseOperations.execute_sql_flush = _execute_sql_flush_retried
