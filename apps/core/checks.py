"""System checks for core settings (`manage.py check`, and before `migrate`)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core import checks

from .ratelimit import HITS_MAX, LIMIT_SETTINGS, POSTGRES_LIMIT_SETTINGS, _parsed


def rate_limit_settings_check(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """Every rate string parses (else each request or message using it fails), and the rates
    counted on the customer's row keep it small enough to rewrite on every hit."""
    problems: list[checks.CheckMessage] = []
    for setting in [*LIMIT_SETTINGS.values(), *POSTGRES_LIMIT_SETTINGS.values()]:
        try:
            items = _parsed(getattr(settings, setting))
        except ValueError as exc:
            problems.append(checks.Error(f"{setting}: {exc}", id="core.E001"))
            continue
        if setting in POSTGRES_LIMIT_SETTINGS.values() and any(i.amount > HITS_MAX for i in items):
            problems.append(checks.Error(
                f"{setting} allows more than {HITS_MAX} in one window: "
                "use a shorter window (e.g. 20/minute rather than 20000/day)",
                id="core.E002",
            ))
    return problems
