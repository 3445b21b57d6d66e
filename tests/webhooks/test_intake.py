"""`POST /webhooks/<connector>/`: every answer of PROTOCOL.md §4 and the issue's bad input."""

from __future__ import annotations

import time

import pytest

from apps.webhooks.models import WebhookEvent, WebhookEventStatus
from apps.webhooks.services import webhook_source_ensure
from tests.support.webhooks import shipped, signed

# The view does its database work on the DB pool's own connections (apps/core/db.py), which
# see only committed data.
pytestmark = pytest.mark.django_db(transaction=True)

URL = "/webhooks/demo-crm/"


def post(client, body: bytes, headers: dict[str, str], url: str = URL):
    return client.post(url, data=body, content_type="application/json", headers=headers)


def test_a_signed_event_is_stored_and_accepted(client, demo_source):
    body, headers = signed(shipped())
    response = post(client, body, headers)
    assert (response.status_code, response.json()) == (202, {"status": "accepted"})
    event = WebhookEvent.objects.get()
    assert (event.source, event.webhook_id, event.type, event.status) == (
        demo_source,
        headers["webhook-id"],
        "order.shipped",
        WebhookEventStatus.RECEIVED,
    )
    assert event.data == shipped()["data"]


def test_a_replayed_webhook_id_is_a_duplicate_and_stored_once(client, demo_source):
    body, headers = signed(shipped())
    assert post(client, body, headers).status_code == 202
    again = post(client, body, headers)
    assert (again.status_code, again.json()) == (200, {"status": "duplicate"})
    # Same id, re-signed later with another body: still the same event.
    other_body, other_headers = signed(shipped(order_id="PP-9"), msg_id=headers["webhook-id"])
    assert post(client, other_body, other_headers).json() == {"status": "duplicate"}
    assert WebhookEvent.objects.count() == 1


def test_the_same_webhook_id_from_two_connectors_is_two_events(client, demo_source):
    other_secret = "whsec_b3RoZXItc2VjcmV0LW9mLTMyLWJ5dGVzLWxvbmc="
    webhook_source_ensure(slug="other-crm", secrets=[other_secret])
    body, headers = signed(shipped(), msg_id="msg_shared")
    assert post(client, body, headers).status_code == 202
    body, headers = signed(shipped(), msg_id="msg_shared", secret=other_secret)
    assert post(client, body, headers, url="/webhooks/other-crm/").status_code == 202
    assert WebhookEvent.objects.count() == 2


@pytest.mark.parametrize(
    "body",
    [b"this is not json", b'{"type": "order.shipped", ', b'{"data": {}}', b'{"type": ""}', b"[1, 2]"],
    ids=["text", "truncated-json", "no-type", "empty-type", "not-an-object"],
)
def test_a_signed_body_that_is_not_a_json_event_is_400(client, demo_source, body):
    body, headers = signed(body)
    response = post(client, body, headers)
    assert response.status_code == 400, response.content
    assert response.json()["error"] == "bad_request"
    assert WebhookEvent.objects.count() == 0


def forged(headers: dict[str, str]) -> dict[str, str]:
    return {**headers, "webhook-signature": "v1,AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="}


@pytest.mark.parametrize(
    "tamper",
    [
        forged,
        lambda h: {k: v for k, v in h.items() if k != "webhook-signature"},
        lambda h: {k: v for k, v in h.items() if k != "webhook-timestamp"},
        lambda h: {k: v for k, v in h.items() if k != "webhook-id"},
        lambda h: {},
        lambda h: {**h, "webhook-signature": "v1,not base64!"},
        lambda h: {**h, "webhook-signature": "garbage"},
        lambda h: {**h, "webhook-timestamp": "yesterday"},
        lambda h: {**h, "webhook-id": "msg_other"},  # the id is signed too
    ],
    ids=[
        "forged",
        "no-signature",
        "no-timestamp",
        "no-id",
        "no-headers",
        "bad-base64",
        "no-version",
        "timestamp-not-a-number",
        "id-swapped",
    ],
)
def test_missing_or_wrong_signatures_are_401(client, demo_source, tamper):
    body, headers = signed(shipped())
    response = post(client, body, tamper(headers))
    assert response.status_code == 401, response.content
    assert response.json()["error"] == "invalid_signature"
    assert WebhookEvent.objects.count() == 0


def test_a_tampered_body_is_401(client, demo_source):
    body, headers = signed(shipped())
    response = post(client, body.replace(b"PP-1002", b"PP-6666"), headers)
    assert response.status_code == 401
    assert WebhookEvent.objects.count() == 0


def test_a_body_signed_with_another_secret_is_401(client, demo_source):
    body, headers = signed(shipped(), secret="whsec_d3Jvbmctc2VjcmV0LXdyb25nLXNlY3JldC13cm9uZw==")
    assert post(client, body, headers).status_code == 401


@pytest.mark.parametrize("offset_s", [-360, 360], ids=["6-minutes-old", "6-minutes-ahead"])
def test_a_timestamp_6_minutes_away_is_401(client, demo_source, offset_s):
    body, headers = signed(shipped(), timestamp=time.time() + offset_s)
    response = post(client, body, headers)
    assert response.status_code == 401
    assert "5 minutes" in response.json()["message"]
    assert WebhookEvent.objects.count() == 0


def test_a_timestamp_4_minutes_old_is_accepted(client, demo_source):
    body, headers = signed(shipped(), timestamp=time.time() - 240)
    assert post(client, body, headers).status_code == 202


def test_an_unknown_connector_is_404(client, demo_source):
    body, headers = signed(shipped())
    response = post(client, body, headers, url="/webhooks/no-such-crm/")
    assert response.status_code == 404
    assert response.json()["error"] == "unknown_connector"
    assert WebhookEvent.objects.count() == 0


def test_a_disabled_connector_is_404(client, demo_source):
    demo_source.enabled = False
    demo_source.save()
    body, headers = signed(shipped())
    assert post(client, body, headers).status_code == 404


def test_a_body_over_1_mib_is_413_and_exactly_1_mib_is_read(client, demo_source):
    big = {"type": "order.shipped", "data": {"pad": "x" * (2 * 1024 * 1024)}}
    body, headers = signed(big)
    response = post(client, body, headers)
    assert response.status_code == 413
    assert response.json()["error"] == "payload_too_large"

    event = shipped()
    event["data"]["pad"] = ""
    filler = 1024 * 1024 - len(signed(event)[0])
    event["data"]["pad"] = "x" * filler
    body, headers = signed(event)
    assert len(body) == 1024 * 1024
    assert post(client, body, headers).status_code == 202


def test_an_unknown_event_type_is_accepted(client, demo_source):
    body, headers = signed({"type": "warehouse.restocked", "data": {"sku": "TSHIRT-001"}})
    assert post(client, body, headers).status_code == 202
    assert WebhookEvent.objects.get().type == "warehouse.restocked"


def test_get_is_not_allowed(client, demo_source):
    assert client.get(URL).status_code == 405


def test_rotation_every_active_secret_verifies_and_a_removed_one_does_not(client, demo_source):
    old, new = demo_source.secrets[0], "whsec_bmV3LXJvdGF0ZWQtc2VjcmV0LW9mLTMyLWJ5dGVzIQ=="
    demo_source.secrets = [new, old]
    demo_source.save()
    for secret in (old, new):
        body, headers = signed(shipped(), secret=secret)
        assert post(client, body, headers).status_code == 202, secret
    # A sender mid-rotation may sign with both (Standard Webhooks: space-separated signatures).
    body, headers = signed(shipped(), secret=new)
    msg_id, timestamp = headers["webhook-id"], int(headers["webhook-timestamp"])
    _, with_old = signed(body, secret=old, msg_id=msg_id, timestamp=timestamp)
    both = {**headers, "webhook-signature": f"{with_old['webhook-signature']} {headers['webhook-signature']}"}
    assert post(client, body, both).status_code == 202

    demo_source.secrets = [new]
    demo_source.save()
    body, headers = signed(shipped(), secret=old)
    assert post(client, body, headers).status_code == 401
    assert WebhookEvent.objects.count() == 3


def test_a_connector_without_secrets_refuses_everything(client):
    webhook_source_ensure(slug="bare", secrets=[])
    body, headers = signed(shipped())
    assert post(client, body, headers, url="/webhooks/bare/").status_code == 401


def test_the_intake_costs_two_queries(demo_source, django_assert_num_queries):
    from apps.webhooks.services import webhook_receive
    from apps.webhooks.verifiers import Request

    body, headers = signed(shipped())
    request = Request(body=body, headers=headers)
    with django_assert_num_queries(2):  # the source, then INSERT .. ON CONFLICT DO NOTHING RETURNING
        assert webhook_receive(slug="demo-crm", request=request).duplicate is False
    with django_assert_num_queries(2):
        assert webhook_receive(slug="demo-crm", request=request).duplicate is True


def test_the_demo_source_is_ensured_idempotently_and_keeps_a_rotation_in_progress(settings):
    from apps.webhooks.models import WebhookSource
    from apps.webhooks.services import webhook_source_demo_ensure

    first = webhook_source_demo_ensure()
    assert (first.slug, first.verifier, first.secrets) == (
        "demo-crm",
        "standard",
        [settings.DEMO_WEBHOOK_SECRET],
    )
    first.secrets = [*first.secrets, "whsec_bmV4dC1zZWNyZXQtYWRkZWQtaW4tdGhlLWFkbWluIQ=="]
    first.save()
    again = webhook_source_demo_ensure()
    assert (WebhookSource.objects.count(), again.pk, len(again.secrets)) == (1, first.pk, 2)


@pytest.mark.parametrize(
    "body",
    [
        b'{"type": "order.shipped", "data": {"total": NaN}}',
        b'{"type": "order.shipped", "data": {"note": "a\\u0000b"}}',
    ],
    ids=["nan", "nul-character"],
)
def test_json_that_postgres_cannot_store_is_400_not_500(client, demo_source, body):
    body, headers = signed(body)
    response = post(client, body, headers)
    assert (response.status_code, response.json()["error"]) == (400, "bad_request")
    assert WebhookEvent.objects.count() == 0
