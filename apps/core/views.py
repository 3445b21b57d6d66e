"""Operational endpoints: GET /healthz (load balancers) and GET /metrics (Prometheus)."""

from __future__ import annotations

import hmac
import logging

from asgiref.sync import sync_to_async
from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse

from apps.core.health import run_checks
from apps.core.metrics import metrics_exposition
from apps.core.net import client_ip

logger = logging.getLogger(__name__)


def _token_matches(request: HttpRequest, *, header: str, expected: str) -> bool:
    given = request.headers.get(header, "")
    return bool(expected) and hmac.compare_digest(given.encode(), expected.encode())


def _is_loopback(request: HttpRequest) -> bool:
    ip = client_ip(request)
    return ip is not None and ip.is_loopback


async def _is_staff(request: HttpRequest) -> bool:
    user = await request.auser()
    return bool(user.is_active and user.is_staff)


async def healthz(request: HttpRequest) -> JsonResponse:
    """Status only to the public; the checks to staff, the X-Healthz-Token header, or (in
    development) loopback clients. Failures are logged, never shown to the public."""
    checks = await run_checks()
    healthy = all(state == "ok" for state in checks.values())
    status = 200 if healthy else 503
    if not healthy:
        logger.warning("healthz unavailable: %s", checks)
    body: dict = {"status": "ok" if healthy else "unavailable"}
    if (
        _token_matches(request, header="X-Healthz-Token", expected=settings.HEALTHZ_TOKEN)
        or (settings.HEALTHZ_DETAILS_TO_LOOPBACK and _is_loopback(request))
        or await _is_staff(request)
    ):
        body["checks"] = checks
    return JsonResponse(body, status=status, headers={"Cache-Control": "no-store"})


async def metrics(request: HttpRequest) -> HttpResponse:
    """Prometheus text format, for staff or `Authorization: Bearer <METRICS_TOKEN>`."""
    authorized = _token_matches(
        request, header="Authorization", expected=f"Bearer {settings.METRICS_TOKEN}"
    ) if settings.METRICS_TOKEN else False
    if not authorized and not await _is_staff(request):
        return JsonResponse({"error": "forbidden", "detail": "Send Authorization: Bearer <METRICS_TOKEN>."},
                            status=403)
    body = await sync_to_async(metrics_exposition, thread_sensitive=False)()
    return HttpResponse(body, content_type="text/plain; version=0.0.4; charset=utf-8")
