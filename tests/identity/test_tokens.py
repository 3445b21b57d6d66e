"""ID token checks with a key this test controls: what a forged, altered, stale or misdirected
token gets (apps/identity/tokens.py; the backend turns a refusal into the "not signed in" page)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from apps.identity.tokens import IdTokenInvalid, IdTokenUnknownKey, id_token_verify

ISSUER = "https://idp.example.com/realms/staff"
CLIENT = "kefu-console"
NONCE = "n-0S6_WzA2Mj"


def _key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


KEY, OTHER_KEY = _key(), _key()


def jwk_of(key: rsa.RSAPrivateKey, kid: str) -> dict:
    public = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    return {**public, "kid": kid, "use": "sig", "alg": "RS256"}


KEYS = [jwk_of(KEY, "k1")]


def claims(**changes) -> dict:
    now = int(time.time())
    base = {"iss": ISSUER, "sub": "248289761001", "aud": CLIENT, "exp": now + 300, "iat": now, "nonce": NONCE}
    base.update(changes)
    return {name: value for name, value in base.items() if value is not None}


def sign(payload: dict, *, key=KEY, kid: str = "k1", alg: str = "RS256") -> str:
    return jwt.encode(payload, key, algorithm=alg, headers={"kid": kid})


def verify(token: str, nonce: str = NONCE, keys: list | None = None) -> dict:
    return id_token_verify(token=token, keys=KEYS if keys is None else keys, issuer=ISSUER, client_id=CLIENT,
                           nonce=nonce)


def b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def test_a_token_signed_by_the_providers_key_is_believed() -> None:
    assert verify(sign(claims(groups=["kefu-agents"])))["groups"] == ["kefu-agents"]


def test_a_token_whose_claims_were_altered_after_signing_is_refused() -> None:
    header, _, signature = sign(claims()).split(".")
    forged = ".".join([header, b64(claims(sub="admin-of-everything")), signature])
    with pytest.raises(IdTokenInvalid, match="Signature verification failed|signature verification failed"):
        verify(forged)


def test_a_token_signed_by_another_key_under_the_providers_key_id_is_refused() -> None:
    with pytest.raises(IdTokenInvalid, match="ignature verification failed"):
        verify(sign(claims(), key=OTHER_KEY))


def test_an_expired_token_is_refused() -> None:
    now = int(time.time())
    with pytest.raises(IdTokenInvalid, match="expired"):
        verify(sign(claims(iat=now - 900, exp=now - 120)))  # past the 60 s leeway


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"aud": "another-app"}, "Audience doesn't match"),
        ({"iss": "https://evil.example.com"}, "Invalid issuer"),
        ({"exp": None}, 'Token is missing the "exp" claim'),
        ({"aud": [CLIENT, "another-app"], "azp": "another-app"}, "`azp` is not this client"),
        ({"nonce": "replayed-from-another-sign-in"}, "nonce"),
        ({"nonce": None}, "nonce"),
    ],
)
def test_a_token_meant_for_someone_else_or_another_sign_in_is_refused(change: dict, message: str) -> None:
    with pytest.raises(IdTokenInvalid, match=message):
        verify(sign(claims(**change)))


def test_an_unsigned_token_is_refused() -> None:
    unsigned = f"{b64({'alg': 'none', 'kid': 'k1'})}.{b64(claims())}."
    with pytest.raises(IdTokenInvalid, match="algorithm 'none'"):
        verify(unsigned)


def test_a_token_signed_hs256_with_the_public_key_as_secret_is_refused() -> None:
    public_pem = KEY.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    header = b64({"alg": "HS256", "kid": "k1", "typ": "JWT"})
    payload = b64(claims())
    mac = hmac.new(public_pem, f"{header}.{payload}".encode(), hashlib.sha256).digest()
    forged = f"{header}.{payload}.{base64.urlsafe_b64encode(mac).rstrip(b'=').decode()}"
    with pytest.raises(IdTokenInvalid, match="algorithm 'HS256'"):
        verify(forged)


def test_a_key_id_the_key_set_lacks_asks_for_the_keys_again() -> None:
    with pytest.raises(IdTokenUnknownKey):
        verify(sign(claims(), kid="k2"))
    rotated = [*KEYS, jwk_of(OTHER_KEY, "k2")]
    assert verify(sign(claims(), key=OTHER_KEY, kid="k2"), keys=rotated)["sub"] == "248289761001"


def test_garbage_is_refused() -> None:
    with pytest.raises(IdTokenInvalid, match="not a JWT"):
        verify("not-a-token")
