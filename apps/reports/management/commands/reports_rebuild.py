from __future__ import annotations

import time

from django.core.management.base import BaseCommand

from apps.reports.facts import rollups_rebuild


class Command(BaseCommand):
    help = "Recompute every conversation fact and hourly rollup of the reports from the conversations."

    def handle(self, *args, **options) -> None:
        started = time.monotonic()
        result = rollups_rebuild()
        self.stdout.write(
            f"rebuilt {result['facts']} conversation facts and {result['rollup_rows']} hourly rollup rows "
            f"in {time.monotonic() - started:.1f} s"
        )
