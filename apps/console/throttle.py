"""Sign-in throttling for /console/login/ and /admin/login/ (django-axes, attempts in Postgres).

Both pages sign in through Django's `authenticate(request, ...)`, so axes counts each failure
per username and client address and refuses that pair (even with the right password) after
AXES_FAILURE_LIMIT failures, for AXES_COOLOFF_TIME.
"""

from __future__ import annotations

from typing import Any

from axes.backends import AxesStandaloneBackend
from axes.helpers import get_cool_off, get_failure_limit
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from apps.core.net import client_ip


class LoginThrottleBackend(AxesStandaloneBackend):
    """Refuses a locked-out username and address before any password is checked.

    Credentials checked without a request (the test client's `login()`, a shell) have no
    client to count and pass through: every sign-in page passes its request."""

    def authenticate(
        self,
        request: HttpRequest | None,
        username: str | None = None,
        password: str | None = None,
        **kwargs: Any,
    ) -> None:
        if request is None:
            return None
        return super().authenticate(request, username, password, **kwargs)


def login_client_ip(request: HttpRequest) -> str | None:
    """The address attempts are counted by: REMOTE_ADDR, which the web server sets from
    X-Forwarded-For only for TRUSTED_PROXIES (apps/core/net.py); never the header itself."""
    address = client_ip(request)
    return None if address is None else str(address)


def locked_out(request: HttpRequest, original_response: Any = None, credentials: Any = None) -> HttpResponse:
    """The page a locked-out sign-in gets (429), saying when to try again."""
    cool_off = get_cool_off(request)
    context = {
        "failure_limit": get_failure_limit(request, credentials),
        "minutes": max(1, round(cool_off.total_seconds() / 60)) if cool_off else None,
    }
    return render(request, "registration/locked_out.html", context, status=429)
