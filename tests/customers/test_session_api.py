"""POST /api/widget/session, PROTOCOL.md §1."""

import json
from datetime import datetime, timedelta

import pytest
from django.core import signing
from django.utils import timezone

from apps.customers.models import Customer
from apps.customers.services import user_hash_for
from apps.customers.tokens import TokenInvalid, widget_token_verify

pytestmark = pytest.mark.django_db
URL = "/api/widget/session"


def post(client, body, raw=False):
    data = body if raw else json.dumps(body)
    return client.post(URL, data=data, content_type="application/json")


def test_no_user_id_creates_an_anonymous_customer_with_a_token(client):
    before = timezone.now()
    response = post(client, {"name": "Ada", "email": "ada@example.com"})

    assert response.status_code == 201
    body = response.json()
    assert set(body) == {"token", "customer_id", "expires_at"}
    customer = Customer.objects.get()
    assert body["customer_id"] == str(customer.pk)
    assert (customer.external_id, customer.name, customer.email) == (None, "Ada", "ada@example.com")
    assert widget_token_verify(token=body["token"]) == customer.pk
    expires = datetime.fromisoformat(body["expires_at"])
    assert before + timedelta(hours=24) <= expires <= timezone.now() + timedelta(hours=24)


def test_empty_body_is_an_anonymous_session(client):
    response = client.post(URL, data="", content_type="application/json")
    assert response.status_code == 201
    assert Customer.objects.get().external_id is None


def test_each_anonymous_session_is_a_new_customer(client):
    first, second = post(client, {}).json(), post(client, {}).json()
    assert first["customer_id"] != second["customer_id"]
    assert Customer.objects.count() == 2


def test_verified_user_id_is_the_same_customer_every_time(client):
    body = {"user_id": "crm-123", "user_hash": user_hash_for(user_id="crm-123"), "name": "Ada",
            "email": "ada@example.com"}
    first = post(client, body)
    second = post(client, body)

    assert first.status_code == second.status_code == 201
    assert first.json()["customer_id"] == second.json()["customer_id"]
    customer = Customer.objects.get()
    assert (customer.external_id, customer.name, customer.email) == ("crm-123", "Ada", "ada@example.com")


def test_unsigned_name_and_email_never_overwrite_an_identified_customer(client):
    body = {"user_id": "crm-123", "user_hash": user_hash_for(user_id="crm-123")}
    post(client, {**body, "name": "Ada", "email": "ada@example.com"})

    response = post(client, {**body, "name": "Mallory", "email": "mallory@example.com"})

    assert response.status_code == 201
    customer = Customer.objects.get()
    assert (customer.name, customer.email) == ("Ada", "ada@example.com")


@pytest.mark.parametrize("user_hash", ["é" * 64, "ハッシュ", "0" * 63 + "\u00ff"])
def test_a_non_ascii_user_hash_is_refused_not_a_server_error(client, user_hash):
    response = post(client, {"user_id": "crm-123", "user_hash": user_hash})

    assert response.status_code == 403
    assert response.json() == {"error": "identity_verification_failed"}
    assert Customer.objects.count() == 0


def test_user_hash_is_hex_hmac_sha256_of_user_id_with_the_identity_secret(client, settings):
    import hashlib
    import hmac

    settings.WIDGET_IDENTITY_SECRET = "s3cret"
    expected = hmac.new(b"s3cret", b"crm-9", hashlib.sha256).hexdigest()
    assert post(client, {"user_id": "crm-9", "user_hash": expected}).status_code == 201
    assert post(client, {"user_id": "crm-9", "user_hash": expected.upper()}).status_code == 201


@pytest.mark.parametrize(
    "body",
    [
        {"user_id": "crm-123"},
        {"user_id": "crm-123", "user_hash": ""},
        {"user_id": "crm-123", "user_hash": "0" * 64},
        {"user_id": "crm-123", "user_hash": user_hash_for(user_id="crm-124")},
    ],
    ids=["missing", "empty", "wrong", "other-users"],
)
def test_user_id_without_a_valid_hash_is_refused(client, body):
    response = post(client, body)
    assert response.status_code == 403
    assert response.json() == {"error": "identity_verification_failed"}
    assert Customer.objects.count() == 0


@pytest.mark.parametrize("raw", ["{not json", "[1, 2]", '"text"', "\xff"])
def test_a_body_that_is_not_a_json_object_is_a_400(client, raw):
    response = post(client, raw, raw=True)
    assert response.status_code == 400
    assert response.json()["error"] == "bad_json"
    assert Customer.objects.count() == 0


@pytest.mark.parametrize(
    "body",
    [{"user_id": 123}, {"user_id": ""}, {"name": ["Ada"]}, {"email": "not-an-email"}, {"name": "x" * 201}],
)
def test_bad_fields_are_a_400_naming_the_field(client, body):
    response = post(client, body)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid"
    assert next(iter(body)) in response.json()["detail"]


def test_get_is_not_allowed(client):
    assert client.get(URL).status_code == 405


def test_cross_origin_preflight_is_answered(client):
    response = client.options(
        URL, HTTP_ORIGIN="https://shop.example", HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST"
    )
    assert response.status_code == 204
    assert response["Access-Control-Allow-Origin"] == "*"


def test_token_is_refused_once_expired(client, monkeypatch):
    token = post(client, {}).json()["token"]
    later = timezone.now().timestamp() + 24 * 3600 + 5
    monkeypatch.setattr(signing.time, "time", lambda: later)
    with pytest.raises(TokenInvalid):
        widget_token_verify(token=token)


def test_forged_token_is_refused(client):
    token = post(client, {}).json()["token"]
    with pytest.raises(TokenInvalid):
        widget_token_verify(token=token[:-2] + ("AA" if not token.endswith("AA") else "BB"))
    with pytest.raises(TokenInvalid):
        widget_token_verify(token=signing.dumps({"c": "x"}, salt="other"))
