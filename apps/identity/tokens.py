"""ID token checks (OpenID Connect Core §3.1.3.7): signature by one of the provider's keys, the
algorithm we expect (never `none`, never HS256 with a public key as the secret), issuer, audience,
expiry, and the nonce this browser's sign-in sent."""

from __future__ import annotations

import hmac
from typing import Any

import jwt

ALGORITHMS = ("RS256",)
LEEWAY_S = 60  # clock skew between Kefu and the provider


class IdTokenInvalid(Exception):
    """The ID token must not be believed; the message says why (for logs, not for users)."""


class IdTokenUnknownKey(IdTokenInvalid):
    """Signed with a key id the key set lacks: read the keys again once (rotation)."""


def _candidate_keys(header: dict[str, Any], keys: list[dict[str, Any]]) -> list[dict[str, Any]]:
    kid, alg = header.get("kid"), header.get("alg")
    return [
        key for key in keys
        if key.get("kty") == "RSA"
        and key.get("use", "sig") == "sig"
        and key.get("alg", alg) == alg
        and (kid is None or key.get("kid") == kid)
    ]


def id_token_verify(
    *, token: str, keys: list[dict[str, Any]], issuer: str, client_id: str, nonce: str,
    leeway: int = LEEWAY_S,
) -> dict[str, Any]:
    """The token's claims, or IdTokenInvalid."""
    try:
        header = jwt.get_unverified_header(token)
    except jwt.InvalidTokenError as exc:
        raise IdTokenInvalid(f"not a JWT: {exc}") from exc
    if header.get("alg") not in ALGORITHMS:
        raise IdTokenInvalid(f"algorithm {header.get('alg')!r} is not one of {', '.join(ALGORITHMS)}")
    candidates = _candidate_keys(header, keys)
    if not candidates:
        raise IdTokenUnknownKey(
            f"no {header['alg']} key with id {header.get('kid')!r} in the provider's key set"
        )
    claims: dict[str, Any] | None = None
    for jwk in candidates:
        try:
            claims = jwt.decode(
                token, jwt.PyJWK(jwk, algorithm=header["alg"]).key, algorithms=[header["alg"]],
                audience=client_id, issuer=issuer, leeway=leeway,
                options={"require": ["iss", "sub", "aud", "exp", "iat"]},
            )
            break
        except jwt.InvalidSignatureError:
            continue  # another key of the same id (rare): try it
        except (jwt.InvalidTokenError, jwt.PyJWKError) as exc:
            raise IdTokenInvalid(str(exc)) from exc
    if claims is None:
        raise IdTokenInvalid("signature verification failed")
    audiences = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
    if len(audiences) > 1 and claims.get("azp") != client_id:
        raise IdTokenInvalid("several audiences and `azp` is not this client")
    if not nonce or not hmac.compare_digest(str(claims.get("nonce", "")), nonce):
        raise IdTokenInvalid("the nonce is not the one this sign-in sent")
    return claims
