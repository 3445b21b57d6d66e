"""`manage.py check` (and every server start) names a broken SSO configuration."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core import checks

from .config import groups_map_parse


def sso_settings_check(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    problems: list[checks.CheckMessage] = []
    try:
        groups_map_parse(settings.OIDC_GROUPS_MAP)
    except ValueError as exc:
        problems.append(checks.Error(str(exc), id="identity.E001"))
    if settings.OIDC_ISSUER and not settings.OIDC_CLIENT_ID:
        problems.append(checks.Error("OIDC_ISSUER is set but OIDC_CLIENT_ID is empty", id="identity.E002"))
    if settings.OIDC_ISSUER and not settings.OIDC_GROUPS_MAP:
        problems.append(checks.Warning(
            "OIDC_GROUPS_MAP is empty: nobody who signs in with SSO gets a role, "
            "so every SSO sign-in is refused",
            id="identity.W001",
        ))
    if not settings.LOCAL_LOGIN_ENABLED and not settings.OIDC_ISSUER:
        problems.append(checks.Warning(
            "LOCAL_LOGIN_ENABLED is false and OIDC_ISSUER is empty: nobody can sign in to the console",
            id="identity.W002",
        ))
    return problems
