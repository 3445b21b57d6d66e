"""POST /api/widget/session (PROTOCOL.md §1). Token-authenticated, so no CSRF and open CORS:
the widget runs on the host site's origin and sends no cookies."""

from __future__ import annotations

import ipaddress
import json

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from apps.core.net import client_ip
from apps.core.ratelimit import limit_check

from .services import IdentityVerificationFailed, customer_session_create

_CORS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "POST, OPTIONS",
    "Access-Control-Allow-Headers": "Content-Type",
    "Access-Control-Max-Age": "86400",
}
_LIMITS = {"user_id": 255, "user_hash": 128, "user_jwt": 4096, "name": 200, "email": 254}


def _client_key(request: HttpRequest) -> str:
    """The client address the session limit counts: an IPv6 client owns a whole /64, so it is
    counted per /64 (else each of its addresses would get its own budget)."""
    ip = client_ip(request)
    if ip is None:
        return ""
    return str(ipaddress.ip_network(f"{ip}/64", strict=False)) if ip.version == 6 else str(ip)


def _error(status: int, code: str, detail: str) -> JsonResponse:
    return JsonResponse({"error": code, "detail": detail}, status=status, headers=_CORS)


@csrf_exempt
def widget_session(request: HttpRequest) -> HttpResponse:
    if request.method == "OPTIONS":
        return HttpResponse(status=204, headers=_CORS)
    if request.method != "POST":
        return _error(405, "method_not_allowed", "Use POST with a JSON body.")
    # Each anonymous session is a new customer row: bound them per client address, across processes.
    # Behind a proxy the address is the client only when the proxy is in TRUSTED_PROXIES.
    limit = limit_check(name="session_ip", key=_client_key(request))
    if limit.limited:
        return JsonResponse({"error": "rate_limited", "detail": "Too many sessions from this address."},
                            status=429, headers={**_CORS, "Retry-After": str(limit.retry_after_s),
                                                         "Access-Control-Expose-Headers": "Retry-After"})
    try:
        body = json.loads(request.body or b"{}")
    except (UnicodeDecodeError, json.JSONDecodeError):
        return _error(400, "bad_json", "The body must be a JSON object (or empty).")
    if not isinstance(body, dict):
        return _error(400, "bad_json", "The body must be a JSON object (or empty).")
    fields = {}
    for name, limit in _LIMITS.items():
        value = body.get(name)
        if value is None:
            continue
        if not isinstance(value, str) or len(value) > limit or (name == "user_id" and not value):
            return _error(
                400, "invalid", f"`{name}` must be a non-empty string of at most {limit} characters."
            )
        fields[name] = value
    if fields.get("email"):
        try:
            validate_email(fields["email"])
        except ValidationError:
            return _error(400, "invalid", "`email` is not an email address.")
    try:
        session = customer_session_create(**fields)
    except IdentityVerificationFailed:
        return JsonResponse({"error": "identity_verification_failed"}, status=403, headers=_CORS)
    return JsonResponse(
        {
            "token": session.token,
            "customer_id": str(session.customer.pk),
            "expires_at": session.expires_at.isoformat(),
        },
        status=201,
        headers=_CORS,
    )
