"""POST /api/widget/session with `user_jwt`: HS256 under WIDGET_JWT_SECRET (never the user_hash
key), `exp` and `aud` required, `iss` when configured, `sub` the user id; its signed name/email
claims (and only those) update the customer, and its e-mail is verified."""

import json
import time

import jwt
import pytest

from apps.customers.models import Customer
from apps.customers.services import user_hash_for
from apps.customers.tokens import widget_token_verify

pytestmark = pytest.mark.django_db
URL = "/api/widget/session"


@pytest.fixture(autouse=True)
def identity_secrets(settings):
    # HS256 wants a key of at least 32 bytes (RFC 7518 §3.2); production refuses shorter ones.
    settings.WIDGET_IDENTITY_SECRET = "a-random-identity-secret-of-40-characters"
    settings.WIDGET_JWT_SECRET = "a-different-random-jwt-secret-of-40-chars"
    settings.WIDGET_JWT_AUDIENCE = "kefu"
    settings.WIDGET_JWT_ISSUER = ""


def post(client, body):
    return client.post(URL, data=json.dumps(body), content_type="application/json")


def signed(settings, *, secret=None, algorithm="HS256", **claims):
    claims.setdefault("aud", "kefu")
    claims = {k: v for k, v in claims.items() if v is not None}
    return jwt.encode(claims, secret or settings.WIDGET_JWT_SECRET, algorithm=algorithm)


def refused(response) -> bool:
    return response.status_code == 403 and response.json() == {"error": "identity_verification_failed"}


def test_a_valid_jwt_is_the_identified_customer_with_its_claims(client, settings):
    token = signed(settings, sub="crm-7", exp=int(time.time()) + 600, name="Ada", email="ada@example.com")

    response = post(client, {"user_jwt": token})

    assert response.status_code == 201
    customer = Customer.objects.get()
    assert (customer.external_id, customer.name, customer.email) == ("crm-7", "Ada", "ada@example.com")
    assert customer.email_verified is True
    assert widget_token_verify(token=response.json()["token"]) == customer.pk


def test_jwt_and_user_hash_reach_the_same_customer(client, settings):
    by_hash = post(client, {"user_id": "crm-7", "user_hash": user_hash_for(user_id="crm-7")}).json()
    by_jwt = post(client, {"user_jwt": signed(settings, sub="crm-7", exp=int(time.time()) + 600)}).json()

    assert by_hash["customer_id"] == by_jwt["customer_id"]
    assert Customer.objects.count() == 1


def test_signed_claims_update_the_customer_and_unsigned_fields_do_not(client, settings):
    exp = int(time.time()) + 600
    post(client, {"user_jwt": signed(settings, sub="crm-7", exp=exp, name="Ada", email="ada@example.com")})

    post(client, {"user_jwt": signed(settings, sub="crm-7", exp=exp, name="Ada Lovelace"),
                  "name": "Mallory", "email": "mallory@example.com"})

    customer = Customer.objects.get()
    assert (customer.name, customer.email) == ("Ada Lovelace", "ada@example.com")
    assert customer.email_verified is True


def test_a_jwt_with_another_email_replaces_the_stored_one_verified(client, settings):
    exp = int(time.time()) + 600
    post(client, {"user_id": "crm-7", "user_hash": user_hash_for(user_id="crm-7"),
                  "email": "old@example.com"})
    assert Customer.objects.get().email_verified is False  # typed, never proof

    post(client, {"user_jwt": signed(settings, sub="crm-7", exp=exp)})  # no email: nothing changes
    customer = Customer.objects.get()
    assert (customer.email, customer.email_verified) == ("old@example.com", False)

    post(client, {"user_jwt": signed(settings, sub="crm-7", exp=exp, email="new@example.com")})
    customer = Customer.objects.get()
    assert (customer.email, customer.email_verified) == ("new@example.com", True)


def test_a_jwt_proves_the_email_a_user_hash_session_typed(client, settings):
    post(client, {"user_id": "crm-7", "user_hash": user_hash_for(user_id="crm-7"),
                  "email": "ada@example.com"})

    exp = int(time.time()) + 600
    post(client, {"user_jwt": signed(settings, sub="crm-7", exp=exp, email="ada@example.com")})

    customer = Customer.objects.get()
    assert (customer.email, customer.email_verified) == ("ada@example.com", True)


def test_the_issuer_is_checked_when_configured(client, settings):
    settings.WIDGET_JWT_ISSUER = "https://shop.example.com"
    exp = int(time.time()) + 600

    assert refused(post(client, {"user_jwt": signed(settings, sub="crm-7", exp=exp)}))
    assert refused(post(client, {"user_jwt": signed(settings, sub="crm-7", exp=exp, iss="https://evil.example")}))
    ok = post(client, {"user_jwt": signed(settings, sub="crm-7", exp=exp, iss="https://shop.example.com")})
    assert ok.status_code == 201


def test_jwt_sessions_are_off_without_a_jwt_secret(client, settings):
    token = signed(settings, sub="crm-7", exp=int(time.time()) + 600)
    settings.WIDGET_JWT_SECRET = ""

    assert refused(post(client, {"user_jwt": token}))
    assert Customer.objects.count() == 0


def test_a_jwt_secret_equal_to_the_identity_secret_is_refused(client, settings):
    settings.WIDGET_JWT_SECRET = settings.WIDGET_IDENTITY_SECRET

    assert refused(post(client, {"user_jwt": signed(settings, sub="crm-7", exp=int(time.time()) + 600)}))
    assert Customer.objects.count() == 0


@pytest.mark.parametrize(
    "case",
    ["expired", "no-exp", "no-sub", "wrong-secret", "identity-secret", "no-aud", "wrong-aud", "alg-none",
     "exp-too-far", "garbage", "other-user-id", "bad-email"],
)
def test_an_invalid_jwt_is_refused(client, settings, case):
    now = int(time.time())
    tokens = {
        "expired": lambda: signed(settings, sub="crm-7", exp=now - 120),
        "no-exp": lambda: signed(settings, sub="crm-7"),
        "no-sub": lambda: signed(settings, exp=now + 600),
        "wrong-secret": lambda: signed(settings, secret="another-secret-of-32-bytes-length!", sub="crm-7",
                                       exp=now + 600),
        "identity-secret": lambda: signed(settings, secret=settings.WIDGET_IDENTITY_SECRET, sub="crm-7",
                                          exp=now + 600),
        "no-aud": lambda: signed(settings, sub="crm-7", exp=now + 600, aud=None),
        "wrong-aud": lambda: signed(settings, sub="crm-7", exp=now + 600, aud="another-app"),
        "alg-none": lambda: jwt.encode({"sub": "crm-7", "exp": now + 600, "aud": "kefu"}, None,
                                       algorithm="none"),
        "exp-too-far": lambda: signed(settings, sub="crm-7", exp=now + 2 * settings.WIDGET_JWT_MAX_AGE_S),
        "garbage": lambda: "not.a.jwt",
        "other-user-id": lambda: signed(settings, sub="crm-7", exp=now + 600),
        "bad-email": lambda: signed(settings, sub="crm-7", exp=now + 600, email="not an address"),
    }
    body = {"user_jwt": tokens[case]()}
    if case == "other-user-id":
        body["user_id"] = "crm-8"

    assert refused(post(client, body))
    assert Customer.objects.count() == 0


def test_user_hash_can_be_switched_off_so_only_expiring_proofs_are_accepted(client, settings):
    settings.WIDGET_USER_HASH_ENABLED = False

    by_hash = post(client, {"user_id": "crm-7", "user_hash": user_hash_for(user_id="crm-7")})
    by_jwt = post(client, {"user_jwt": signed(settings, sub="crm-7", exp=int(time.time()) + 600)})

    assert refused(by_hash)
    assert by_jwt.status_code == 201
    assert Customer.objects.get().external_id == "crm-7"
