"""Vendor signature schemes against the published vectors and payloads in
../shared/fixtures/webhooks/ (SOURCE.txt says where each comes from), then through the intake."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from datetime import UTC, datetime

import pytest

from apps.webhooks.models import Verifier, WebhookEvent
from apps.webhooks.services import webhook_source_ensure
from apps.webhooks.verifiers import Incoming, PayloadInvalid, Request, SignatureInvalid, verify
from tests.support.webhooks import SHARED_FIXTURES


def fixture(name: str) -> dict:
    return json.loads((SHARED_FIXTURES / name).read_text())


def b64_hmac(secret: str, message: bytes) -> str:
    return base64.b64encode(hmac.new(secret.encode(), message, hashlib.sha256).digest()).decode()


# --- Shopify: base64 HMAC of the raw body ---------------------------------------------------


def test_shopify_published_vector():
    vector = fixture("shopify/signature_test_vector.json")
    headers = {
        "x-shopify-hmac-sha256": vector["expected_X-Shopify-Hmac-Sha256"],
        "x-shopify-topic": "orders/paid",
        "x-shopify-webhook-id": "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043",
    }
    got = verify(
        verifier=Verifier.SHOPIFY,
        secrets=["old-secret", vector["client_secret"]],
        request=Request(body=vector["raw_body"].encode(), headers=headers),
    )
    assert got == Incoming("b54557e4-bdd9-4b37-8a5f-bf7d70bcd043", "order.paid", {"foo": "bar"})
    with pytest.raises(SignatureInvalid):
        verify(
            verifier=Verifier.SHOPIFY,
            secrets=["old-secret"],
            request=Request(body=vector["raw_body"].encode(), headers=headers),
        )
    with pytest.raises(SignatureInvalid):
        verify(
            verifier=Verifier.SHOPIFY,
            secrets=[vector["client_secret"]],
            request=Request(body=b'{"foo": "baz"}', headers=headers),
        )


# --- Stripe: t=..,v1=hex HMAC of "{t}.{body}", 5 minutes tolerance --------------------------


def test_stripe_published_vector_within_tolerance():
    """The vector's payload verifies but has no `type` (stripe-python's dummy): a 400, not a 401."""
    vector = fixture("stripe/signature_test_vector.json")
    request = Request(
        body=vector["payload"].encode(), headers={"stripe-signature": vector["expected_Stripe-Signature"]}
    )
    with pytest.raises(PayloadInvalid, match="type"):
        verify(
            verifier=Verifier.STRIPE,
            secrets=[vector["secret"]],
            request=request,
            now=vector["timestamp"] + 60,
        )
    with pytest.raises(SignatureInvalid, match="5 minutes"):
        verify(
            verifier=Verifier.STRIPE,
            secrets=[vector["secret"]],
            request=request,
            now=vector["timestamp"] + 360,
        )
    with pytest.raises(SignatureInvalid, match="no v1"):
        verify(verifier=Verifier.STRIPE, secrets=["whsec_other"], request=request, now=vector["timestamp"])


def stripe_header(secret: str, body: bytes, t: int, extra: str = "") -> str:
    v1 = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={t},v1={v1}{extra}"


def test_stripe_published_event_and_any_v1_matching_so_a_rolled_secret_keeps_working():
    body = (SHARED_FIXTURES / "stripe/event_setup_intent_created.json").read_bytes()
    t = int(time.time())
    old_v1 = stripe_header("whsec_old", body, t).split(",")[1]
    request = Request(
        body=body, headers={"stripe-signature": stripe_header("whsec_new", body, t, f",{old_v1},v0=x")}
    )
    for secrets in (["whsec_new"], ["whsec_old"], ["whsec_other", "whsec_old"]):
        got = verify(verifier=Verifier.STRIPE, secrets=secrets, request=request)
        assert (got.webhook_id, got.type, got.data["object"]) == (
            json.loads(body)["id"],
            "setup_intent.created",
            "setup_intent",
        )
    with pytest.raises(SignatureInvalid):
        verify(verifier=Verifier.STRIPE, secrets=["whsec_other"], request=request)


# --- HubSpot v3: base64 HMAC of method + uri + body + timestamp (ms) ------------------------


def test_hubspot_v3_published_vector():
    vector = fixture("hubspot/signature_v3_test_vector.json")
    headers = {
        "x-hubspot-signature-v3": vector["expected_X-HubSpot-Signature-v3"],
        "x-hubspot-request-timestamp": vector["timestamp"],
    }
    request = Request(
        body=vector["request_body"].encode(),
        headers=headers,
        method=vector["http_method"],
        url=vector["http_uri"],
    )
    now = int(vector["timestamp"]) / 1000 + 10
    # The SDK's sample body is not JSON ('single quotes'): the signature verifies, the body is a 400.
    with pytest.raises(PayloadInvalid):
        verify(verifier=Verifier.HUBSPOT_V3, secrets=[vector["client_secret"]], request=request, now=now)
    with pytest.raises(SignatureInvalid, match="5 minutes"):
        verify(
            verifier=Verifier.HUBSPOT_V3, secrets=[vector["client_secret"]], request=request, now=now + 300
        )
    with pytest.raises(SignatureInvalid, match="does not match"):
        verify(
            verifier=Verifier.HUBSPOT_V3,
            secrets=[vector["client_secret"]],
            request=Request(
                body=request.body, headers=headers, method="POST", url="https://www.example.com/other_uri"
            ),
            now=now,
        )


def test_hubspot_v3_published_batch_body():
    body = (SHARED_FIXTURES / "hubspot/contact_creation_batch.json").read_bytes()
    ts = str(int(time.time() * 1000))
    url = "http://testserver/webhooks/hubspot/"
    headers = {
        "x-hubspot-signature-v3": b64_hmac("hs-secret", b"POST" + url.encode() + body + ts.encode()),
        "x-hubspot-request-timestamp": ts,
    }
    got = verify(
        verifier=Verifier.HUBSPOT_V3,
        secrets=["hs-secret"],
        request=Request(body=body, headers=headers, url=url),
    )
    assert (got.webhook_id, got.type, got.data["events"][0]["objectId"]) == (
        "hubspot:1",
        "contact.creation",
        123,
    )


# --- Zendesk: base64 HMAC of timestamp + body -----------------------------------------------


def zendesk_headers(secret: str, body: bytes, when: datetime) -> dict[str, str]:
    ts = when.strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "x-zendesk-webhook-signature": b64_hmac(secret, ts.encode() + body),
        "x-zendesk-webhook-signature-timestamp": ts,
    }


@pytest.mark.parametrize(
    "name", ["zendesk/user_active_changed.json", "zendesk/messaging_ticket_message_added.json"]
)
def test_zendesk_published_events(name):
    body = (SHARED_FIXTURES / name).read_bytes()
    event = json.loads(body)
    headers = zendesk_headers("zd-secret", body, datetime.now(UTC))
    got = verify(
        verifier=Verifier.ZENDESK, secrets=["zd-secret"], request=Request(body=body, headers=headers)
    )
    assert (got.webhook_id, got.type) == (event["id"], event["type"].removeprefix("zen:event-type:"))
    with pytest.raises(SignatureInvalid):
        verify(
            verifier=Verifier.ZENDESK,
            secrets=["zd-secret"],
            request=Request(body=body + b" ", headers=headers),
        )


def test_zendesk_published_header_example_has_a_timestamp_far_outside_the_window():
    lines = (SHARED_FIXTURES / "zendesk/request_headers_example.txt").read_text().splitlines()
    headers = dict(line.split(": ", 1) for line in lines if ": " in line)
    body = (SHARED_FIXTURES / "zendesk/user_active_changed.json").read_bytes()
    signed = zendesk_headers("zd-secret", body, datetime(2021, 3, 25, 5, 9, 27, tzinfo=UTC))
    assert signed["x-zendesk-webhook-signature-timestamp"] == headers["x-zendesk-webhook-signature-timestamp"]
    with pytest.raises(SignatureInvalid, match="5 minutes"):
        verify(verifier=Verifier.ZENDESK, secrets=["zd-secret"], request=Request(body=body, headers=signed))


# --- Through the intake: a connector configured with a vendor verifier ----------------------


@pytest.mark.django_db(transaction=True)
def test_a_shopify_connector_accepts_the_published_products_update_once(client):
    webhook_source_ensure(slug="shop", secrets=["shpss_secret"], verifier=Verifier.SHOPIFY)
    body = (SHARED_FIXTURES / "shopify/products_update.json").read_bytes()
    headers = {
        "X-Shopify-Hmac-Sha256": b64_hmac("shpss_secret", body),
        "X-Shopify-Topic": "products/update",
        "X-Shopify-Webhook-Id": "7f6a1e3a-0c1b-4c3e-9b8a-1f2e3d4c5b6a",
    }
    first = client.post("/webhooks/shop/", data=body, content_type="application/json", headers=headers)
    again = client.post("/webhooks/shop/", data=body, content_type="application/json", headers=headers)
    assert (first.status_code, again.status_code, again.json()) == (202, 200, {"status": "duplicate"})
    event = WebhookEvent.objects.get()
    assert (event.type, event.data["title"]) == ("product.update", "T-Shirt")
    forged = {**headers, "X-Shopify-Hmac-Sha256": b64_hmac("wrong", body)}
    assert (
        client.post("/webhooks/shop/", data=body, content_type="application/json", headers=forged).status_code
        == 401
    )


@pytest.mark.django_db(transaction=True)
def test_a_zendesk_connector_accepts_a_signed_event_and_refuses_a_stale_one(client):
    webhook_source_ensure(slug="zendesk", secrets=["zd-secret"], verifier=Verifier.ZENDESK)
    body = (SHARED_FIXTURES / "zendesk/user_active_changed.json").read_bytes()
    fresh = zendesk_headers("zd-secret", body, datetime.now(UTC))
    stale = zendesk_headers("zd-secret", body, datetime.fromtimestamp(time.time() - 360, UTC))
    post = lambda h: client.post("/webhooks/zendesk/", data=body, content_type="application/json", headers=h)  # noqa: E731
    assert [post(stale).status_code, post(fresh).status_code, post(fresh).status_code] == [401, 202, 200]
    assert WebhookEvent.objects.get().type == "user.active_changed"


def test_hubspot_v3_behind_a_tls_proxy_django_sees_http_but_hubspot_signed_https():
    vector = fixture("hubspot/signature_v3_test_vector.json")
    headers = {
        "x-hubspot-signature-v3": vector["expected_X-HubSpot-Signature-v3"],
        "x-hubspot-request-timestamp": vector["timestamp"],
    }
    seen_by_django = vector["http_uri"].replace("https://", "http://")
    request = Request(body=b"[]", headers=headers, method="POST", url=seen_by_django)
    with pytest.raises(SignatureInvalid, match="does not match"):  # another body: not this vector
        verify(verifier=Verifier.HUBSPOT_V3, secrets=[vector["client_secret"]], request=request, now=15000)
    request = Request(
        body=vector["request_body"].encode(), headers=headers, method="POST", url=seen_by_django
    )
    with pytest.raises(PayloadInvalid):  # the signature verified; the SDK's sample body is not JSON
        verify(verifier=Verifier.HUBSPOT_V3, secrets=[vector["client_secret"]], request=request, now=15000)
