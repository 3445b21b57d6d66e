"""`POST /webhooks/<connector>/` (PROTOCOL.md §4): check size, verify, store, answer."""

from __future__ import annotations

from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from apps.core.db import db_async

from .services import UnknownConnector, webhook_receive
from .verifiers import PayloadInvalid, Request, SignatureInvalid

MAX_BODY = 1024 * 1024  # 1 MiB


def _error(status: int, error: str, message: str) -> JsonResponse:
    return JsonResponse({"error": error, "message": message}, status=status)


def _too_large() -> JsonResponse:
    return _error(413, "payload_too_large", "The body is over 1 MiB; send smaller events.")


@csrf_exempt
@require_POST
async def webhook_intake(request: HttpRequest, connector: str) -> JsonResponse:
    # Before touching request.body: Django answers 400 itself for a body over its upload limit.
    try:
        if int(request.META.get("CONTENT_LENGTH") or 0) > MAX_BODY:
            return _too_large()
    except ValueError:
        return _error(400, "bad_request", "Content-Length is not a number.")
    body = request.read(MAX_BODY + 1)  # the ASGI handler has buffered it already
    if len(body) > MAX_BODY:
        return _too_large()
    signed = Request(
        body=body,
        headers={k.lower(): v for k, v in request.headers.items()},
        method=request.method or "POST",
        url=request.build_absolute_uri(),
    )
    # Async view + the bounded DB pool: a sync view would get a fresh thread, and so a fresh
    # Postgres connection, for every request under ASGI.
    try:
        stored = await db_async(webhook_receive)(slug=connector, request=signed)
    except UnknownConnector:
        return _error(404, "unknown_connector", f"No connector is named {connector!r}; check the URL.")
    except SignatureInvalid as exc:
        return _error(401, "invalid_signature", str(exc))
    except PayloadInvalid as exc:
        return _error(400, "bad_request", str(exc))
    if stored.duplicate:
        return JsonResponse({"status": "duplicate"}, status=200)
    return JsonResponse({"status": "accepted"}, status=202)
