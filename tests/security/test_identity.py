"""Identity at the session (issue 15): `user_hash` and `user_jwt` never share a key, a JWT names
Kefu as its audience, and only an e-mail inside a valid JWT is verified (PROTOCOL.md §1)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time

import jwt
import pytest

from apps.customers.models import Customer

pytestmark = pytest.mark.django_db
URL = "/api/widget/session"
IDENTITY_SECRET = "the-host-sites-user-hash-secret-of-40-chars"
JWT_SECRET = "the-host-sites-separate-jwt-secret-of-40-c"
REFUSED = {"error": "identity_verification_failed"}


@pytest.fixture(autouse=True)
def secrets(settings):
    settings.WIDGET_IDENTITY_SECRET = IDENTITY_SECRET
    settings.WIDGET_JWT_SECRET = JWT_SECRET
    settings.WIDGET_JWT_AUDIENCE = "kefu"
    settings.WIDGET_JWT_ISSUER = ""


def post(client, body: dict):
    return client.post(URL, data=json.dumps(body), content_type="application/json")


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def host_site_user_hash(user_id: str) -> str:
    """What a host site prints in its page for a signed-in user (PROTOCOL.md §1's formula)."""
    return hmac.new(IDENTITY_SECRET.encode(), user_id.encode(), hashlib.sha256).hexdigest()


# With and without `aud`: the attacker tries what today's and yesterday's checks would accept.
ATTEMPTS = [{"aud": "kefu"}, {}]


@pytest.mark.parametrize(
    "jwt_secret", [JWT_SECRET, IDENTITY_SECRET], ids=["separate-key", "misconfigured-same-key"]
)
def test_a_user_hash_for_a_chosen_user_id_is_not_a_jwt_signature(client, settings, jwt_secret):
    settings.WIDGET_JWT_SECRET = jwt_secret
    header = b64url(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    for extra in ATTEMPTS:
        claims = {"sub": "victim-1", "exp": int(time.time()) + 600, "email": "victim@example.com", **extra}
        # The attacker signs up on the host site with a username that is a JWT's first two parts...
        chosen_user_id = f"{header}.{b64url(json.dumps(claims).encode())}"
        user_hash = host_site_user_hash(chosen_user_id)
        own = post(client, {"user_id": chosen_user_id, "user_hash": user_hash})
        assert own.status_code == 201  # the host site vouches for that username, nothing more
        # ...and turns the user_hash printed for them into a JWT for someone else.
        forged = f"{chosen_user_id}.{b64url(bytes.fromhex(user_hash))}"

        response = post(client, {"user_jwt": forged})

        assert (response.status_code, response.json()) == (403, REFUSED), extra
    assert not Customer.objects.filter(external_id="victim-1").exists()


def good_claims(**changes) -> dict:
    claims = {"sub": "crm-7", "exp": int(time.time()) + 600, "aud": "kefu", "name": "Ada",
              "email": "ada@example.com"}
    claims.update(changes)
    return {k: v for k, v in claims.items() if v is not None}


@pytest.mark.parametrize(
    "bad",
    [{"aud": None}, {"aud": "another-app"}, {"aud": ["another-app", "billing"]}],
    ids=["missing-aud", "wrong-aud", "wrong-aud-list"],
)
def test_a_jwt_must_name_kefu_as_its_audience(client, bad):
    response = post(client, {"user_jwt": jwt.encode(good_claims(**bad), JWT_SECRET, algorithm="HS256")})
    assert (response.status_code, response.json()) == (403, REFUSED)
    assert Customer.objects.count() == 0

    # The same claims for Kefu's audience, under the same key: the host site's valid JWT.
    good = post(client, {"user_jwt": jwt.encode(good_claims(), JWT_SECRET, algorithm="HS256")})
    assert good.status_code == 201


def test_a_jwt_signed_with_the_user_hash_key_is_refused(client):
    for extra in ATTEMPTS:
        token = jwt.encode(good_claims(**{"aud": None, **extra}), IDENTITY_SECRET, algorithm="HS256")

        response = post(client, {"user_jwt": token})

        assert (response.status_code, response.json()) == (403, REFUSED), extra
    assert Customer.objects.count() == 0


def test_only_an_email_inside_a_valid_jwt_is_verified(client):
    anonymous = post(client, {"name": "Ada", "email": "ada@example.com"})
    hashed = post(client, {"user_id": "crm-8", "user_hash": host_site_user_hash("crm-8"),
                           "email": "ada@example.com"})
    signed = post(client, {"user_jwt": jwt.encode(good_claims(), JWT_SECRET, algorithm="HS256"),
                           "email": "mallory@example.com"})

    assert (anonymous.status_code, hashed.status_code, signed.status_code) == (201, 201, 201)
    rows = {str(c.pk): (c.external_id, c.email, c.email_verified) for c in Customer.objects.all()}
    assert rows == {
        anonymous.json()["customer_id"]: (None, "ada@example.com", False),
        hashed.json()["customer_id"]: ("crm-8", "ada@example.com", False),
        signed.json()["customer_id"]: ("crm-7", "ada@example.com", True),
    }


def test_jwt_sessions_are_off_without_a_jwt_secret(client, settings):
    settings.WIDGET_JWT_SECRET = ""
    for extra in ATTEMPTS:
        token = jwt.encode(good_claims(**{"aud": None, **extra}), IDENTITY_SECRET, algorithm="HS256")

        response = post(client, {"user_jwt": token})

        assert (response.status_code, response.json()) == (403, REFUSED), extra
    assert Customer.objects.count() == 0
