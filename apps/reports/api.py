"""`GET /api/reports/summary` (PROTOCOL.md §3): a staff session, or `Authorization: Bearer
<REPORTS_TOKEN>` (compared in constant time; an empty setting turns the bearer off).

401 without any credentials, 403 for a wrong token, a non-staff session, or an agent asking for
someone else's figures (an agent gets their own: access.py); 400 for unreadable bounds.
Beside `team`, `agent=<user id>` narrows to one agent's conversations (an extension the page uses).
"""

from __future__ import annotations

import hmac
from datetime import UTC, datetime

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, JsonResponse
from django.utils.dateparse import parse_date, parse_datetime
from django.views.decorators.http import require_GET

from .access import Viewer, scope_for, viewer_for
from .selectors import summary


class BadRequest(ValueError):
    pass


def _bearer_ok(request: HttpRequest) -> bool | None:
    """True: the right token; False: a wrong one; None: no bearer token sent."""
    given = request.headers.get("Authorization", "")
    if not given.startswith("Bearer "):
        return None
    expected = settings.REPORTS_TOKEN
    return bool(expected) and hmac.compare_digest(given.encode(), f"Bearer {expected}".encode())


def parse_instant(raw: str | None, name: str) -> datetime:
    """An ISO 8601 instant; a date alone is its midnight, and no offset means UTC."""
    if not raw:
        raise BadRequest(f"Give {name} as an ISO 8601 date or time, e.g. 2026-01-31T00:00:00Z.")
    value = parse_datetime(raw.replace(" ", "+"))  # a '+' in a query string arrives as a space
    if value is None:
        day = parse_date(raw)
        if day is None:
            raise BadRequest(f"{name}={raw!r} is not an ISO 8601 date or time.")
        value = datetime.combine(day, datetime.min.time())
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def parse_id(raw: str | None, name: str) -> int | None:
    if raw in (None, ""):
        return None
    try:
        return int(raw)
    except ValueError:
        raise BadRequest(f"{name} must be a numeric id.") from None


def _error(status: int, code: str, detail: str) -> JsonResponse:
    response = JsonResponse({"error": code, "detail": detail}, status=status)
    if status == 401:
        response["WWW-Authenticate"] = 'Bearer realm="reports"'
    return response


@require_GET
def summary_view(request: HttpRequest) -> JsonResponse:
    bearer = _bearer_ok(request)
    if bearer:
        viewer: Viewer | None = Viewer(lead=True)
    elif bearer is False:
        return _error(403, "forbidden", "This bearer token is not REPORTS_TOKEN.")
    elif not request.user.is_authenticated:
        return _error(401, "unauthorized", "Sign in as staff or send Authorization: Bearer <REPORTS_TOKEN>.")
    else:
        viewer = viewer_for(request.user)
        if viewer is None:
            return _error(403, "forbidden", "Reports are for staff accounts.")
    try:
        since = parse_instant(request.GET.get("since"), "since")
        until = parse_instant(request.GET.get("until"), "until")
        if since >= until:
            raise BadRequest("since must be before until.")
        scope = scope_for(
            viewer, since=since, until=until,
            team_id=parse_id(request.GET.get("team"), "team"),
            agent_id=parse_id(request.GET.get("agent"), "agent"),
        )
    except BadRequest as error:
        return _error(400, "invalid", str(error))
    except PermissionDenied as error:
        return _error(403, "forbidden", str(error))
    return JsonResponse(summary(scope))
