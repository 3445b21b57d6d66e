"""Signature schemes of incoming webhooks, one function each, and what an event is made of.

Each verifier checks the raw body against every active secret of the source and returns an
`Incoming` (the id to de-duplicate on, the event type, its data) or raises `SignatureInvalid`
(answered 401) / `PayloadInvalid` (400). Schemes: /work/shared/fixtures/webhooks/SOURCE.txt.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from standardwebhooks.webhooks import EmptyWebhookSecretError, Webhook, WebhookVerificationError

from .models import Verifier

TOLERANCE_S = 300  # PROTOCOL.md §4: a timestamp more than 5 minutes away is refused


class SignatureInvalid(Exception):
    """Missing or wrong signature, or a timestamp out of tolerance (401)."""


class PayloadInvalid(Exception):
    """Signed, but not JSON or without an event type (400)."""


@dataclass(frozen=True)
class Incoming:
    webhook_id: str
    type: str
    data: Any


@dataclass(frozen=True)
class Request:
    """What a verifier may look at. `headers` keys are lower case."""

    body: bytes
    headers: Mapping[str, str]
    method: str = "POST"
    url: str = ""


def verify(*, verifier: str, secrets: list[str], request: Request, now: float | None = None) -> Incoming:
    if not secrets:
        raise SignatureInvalid("this connector has no secret configured")
    return VERIFIERS[verifier](secrets, request, time.time() if now is None else now)


def _not_json(constant: str) -> Any:
    raise ValueError(f"{constant} is not JSON")


def _json(body: bytes) -> Any:
    try:
        # NaN/Infinity are Python's extension, not JSON (and Postgres' jsonb refuses them).
        return json.loads(body, parse_constant=_not_json)
    except ValueError as exc:  # includes bad UTF-8
        raise PayloadInvalid("the body is not JSON") from exc


def _typed(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise PayloadInvalid("the event has no `type`")
    return value.strip()[:200]


def _hmac(key: bytes, message: bytes) -> bytes:
    return hmac.new(key, message, hashlib.sha256).digest()


def _any_match(expected: list[bytes], given: list[bytes]) -> bool:
    # Compare every pair (no early exit on the secret that matched first).
    matched = False
    for e in expected:
        for g in given:
            matched |= hmac.compare_digest(e, g)
    return matched


def _within(timestamp: float, now: float) -> None:
    if abs(now - timestamp) > TOLERANCE_S:
        raise SignatureInvalid("the timestamp is more than 5 minutes away")


def _b64(value: str) -> bytes:
    try:
        return base64.b64decode(value, validate=True)
    except ValueError:
        return b""


def standard(secrets: list[str], request: Request, now: float) -> Incoming:
    """Standard Webhooks (the `standardwebhooks` package): body `{"type": ..., "data": ...}`."""
    names = ("webhook-id", "webhook-timestamp", "webhook-signature")
    headers = {k: request.headers.get(k, "") for k in names}
    try:
        float(headers["webhook-timestamp"])
    except ValueError as exc:
        raise SignatureInvalid("webhook-timestamp must be Unix seconds") from exc
    try:
        body = request.body.decode()
    except UnicodeDecodeError as exc:
        raise PayloadInvalid("the body is not UTF-8 JSON") from exc
    for secret in secrets:
        try:
            Webhook(secret).verify(body, headers, json_parse=False)
            break
        # ValueError: a malformed signature entry or secret
        except (WebhookVerificationError, EmptyWebhookSecretError, ValueError):
            continue
    else:
        if not all(headers.values()):
            raise SignatureInvalid("webhook-id, webhook-timestamp and webhook-signature are required")
        _within(float(headers["webhook-timestamp"]), now)
        raise SignatureInvalid("no signature matches this connector's secrets")
    event = _json(request.body)
    if not isinstance(event, dict):
        raise PayloadInvalid("the body must be a JSON object with `type` and `data`")
    return Incoming(headers["webhook-id"][:255], _typed(event.get("type")), event.get("data") or {})


def shopify(secrets: list[str], request: Request, now: float) -> Incoming:
    """base64 HMAC-SHA256 of the raw body; the topic header is the type (`orders/paid` -> `order.paid`)."""
    given = [_b64(request.headers.get("x-shopify-hmac-sha256", ""))]
    if not _any_match([_hmac(s.encode(), request.body) for s in secrets], given):
        raise SignatureInvalid("X-Shopify-Hmac-Sha256 does not match")
    data = _json(request.body)
    topic = request.headers.get("x-shopify-topic") or request.headers.get("shopify-topic") or ""
    resource, _, action = _typed(topic).partition("/")
    if resource.endswith("s") and not resource.endswith("ss"):
        resource = resource[:-1]
    webhook_id = request.headers.get("x-shopify-webhook-id") or request.headers.get("shopify-webhook-id")
    # The timestamp is not signed, so de-duplicating on the delivery id is the replay defence.
    kind = f"{resource}.{action}" if action else resource
    return Incoming((webhook_id or _body_id(request.body))[:255], kind, data)


def stripe(secrets: list[str], request: Request, now: float) -> Incoming:
    """`Stripe-Signature: t=..,v1=..`: hex HMAC of `{t}.{body}`; any v1 may match (rotation)."""
    parts = [p.split("=", 1) for p in request.headers.get("stripe-signature", "").split(",") if "=" in p]
    timestamps = [v for k, v in parts if k == "t"]
    given = [v.encode() for k, v in parts if k == "v1"]
    if not timestamps or not given or not timestamps[0].isdigit():
        raise SignatureInvalid("Stripe-Signature needs t= and v1=")
    signed = timestamps[0].encode() + b"." + request.body
    expected = [_hmac(s.encode(), signed).hex().encode() for s in secrets]
    if not _any_match(expected, given):
        raise SignatureInvalid("no v1 signature matches this connector's secrets")
    _within(int(timestamps[0]), now)
    event = _json(request.body)
    if not isinstance(event, dict):
        raise PayloadInvalid("a Stripe event is a JSON object")
    data = (event.get("data") or {}).get("object", {})
    webhook_id = str(event.get("id") or _body_id(request.body))[:255]
    return Incoming(webhook_id, _typed(event.get("type")), data)


def hubspot_v3(secrets: list[str], request: Request, now: float) -> Incoming:
    """base64 HMAC of method + URI + body + timestamp (ms); a batch of events per request."""
    timestamp = request.headers.get("x-hubspot-request-timestamp", "")
    given = [_b64(request.headers.get("x-hubspot-signature-v3", ""))]
    if not timestamp.isdigit():
        raise SignatureInvalid("X-HubSpot-Request-Timestamp (Unix milliseconds) is required")
    # HubSpot signs the https:// URL it called; behind a TLS-terminating proxy Django may see
    # http://, so both spellings are tried (the secret is what proves the sender).
    urls = {request.url, "https://" + request.url.removeprefix("http://")}
    expected = [
        _hmac(s.encode(), request.method.encode() + url.encode() + request.body + timestamp.encode())
        for s in secrets
        for url in sorted(urls)
    ]
    if not _any_match(expected, given):
        raise SignatureInvalid("X-HubSpot-Signature-v3 does not match")
    _within(int(timestamp) / 1000, now)
    batch = _json(request.body)
    if not isinstance(batch, list) or not batch or not isinstance(batch[0], dict):
        raise PayloadInvalid("a HubSpot delivery is a non-empty JSON array of events")
    ids = ",".join(str(e.get("eventId", "")) for e in batch if isinstance(e, dict))
    return Incoming(f"hubspot:{ids}"[:255], _typed(batch[0].get("subscriptionType")), {"events": batch})


def zendesk(secrets: list[str], request: Request, now: float) -> Incoming:
    """base64 HMAC of `{timestamp}{body}`, timestamp ISO 8601 UTC."""
    timestamp = request.headers.get("x-zendesk-webhook-signature-timestamp", "")
    given = [_b64(request.headers.get("x-zendesk-webhook-signature", ""))]
    signed = timestamp.encode() + request.body
    if not timestamp or not _any_match([_hmac(s.encode(), signed) for s in secrets], given):
        raise SignatureInvalid("X-Zendesk-Webhook-Signature does not match")
    try:
        _within(datetime.fromisoformat(timestamp.replace("Z", "+00:00")).timestamp(), now)
    except ValueError as exc:
        raise SignatureInvalid("X-Zendesk-Webhook-Signature-Timestamp is not ISO 8601") from exc
    event = _json(request.body)
    if not isinstance(event, dict):
        raise PayloadInvalid("a Zendesk event is a JSON object")
    kind = _typed(event.get("type")).removeprefix("zen:event-type:")
    webhook_id = event.get("id") or request.headers.get("x-zendesk-webhook-invocation-id")
    return Incoming(str(webhook_id or _body_id(request.body))[:255], kind, event)


def _body_id(body: bytes) -> str:
    return "sha256:" + hashlib.sha256(body).hexdigest()


VERIFIERS: dict[str, Callable[[list[str], Request, float], Incoming]] = {
    Verifier.STANDARD: standard,
    Verifier.SHOPIFY: shopify,
    Verifier.STRIPE: stripe,
    Verifier.HUBSPOT_V3: hubspot_v3,
    Verifier.ZENDESK: zendesk,
}
