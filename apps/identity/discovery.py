"""The provider's discovery document and signing keys, fetched on first use and kept per process.

The document says where to send the browser, where to swap the code, and where the keys are;
it is read again after DISCOVERY_TTL_S. Keys are read again when a token names a key id we do not
hold (the provider rotated its keys), at most once per KEYS_MIN_REFRESH_S.

OIDC_ISSUER is set by the operator, not by a tenant: the outbound address policy
(apps/core/outbound.py) does not apply, so an on-premises Keycloak on a private address works."""

from __future__ import annotations

import time
from typing import Any

import httpx
from django.conf import settings

from apps.core.runtime import runtime

DISCOVERY_TTL_S = 3600.0
KEYS_MIN_REFRESH_S = 60.0
TIMEOUT_S = 10.0
REQUIRED = ("issuer", "authorization_endpoint", "token_endpoint", "jwks_uri")


class ProviderUnavailable(Exception):
    """The identity provider could not be asked, or answered with something unusable."""


def _get_json(url: str) -> dict[str, Any]:
    try:
        response = httpx.get(url, timeout=TIMEOUT_S, headers={"Accept": "application/json"})
        response.raise_for_status()
        document = response.json()
    except (httpx.HTTPError, ValueError) as exc:
        raise ProviderUnavailable(f"{url}: {exc}") from exc
    if not isinstance(document, dict):
        raise ProviderUnavailable(f"{url} did not answer with a JSON object")
    return document


def provider_metadata(*, issuer: str | None = None) -> dict[str, Any]:
    """`<issuer>/.well-known/openid-configuration`, checked to name the same issuer."""
    issuer = (issuer or settings.OIDC_ISSUER).rstrip("/")
    cache: dict[str, tuple[float, dict[str, Any]]] = runtime().get("identity.discovery", dict)
    cached = cache.get(issuer)
    if cached and time.monotonic() - cached[0] < DISCOVERY_TTL_S:
        return cached[1]
    document = _get_json(f"{issuer}/.well-known/openid-configuration")
    missing = [name for name in REQUIRED if not document.get(name)]
    if missing:
        raise ProviderUnavailable(f"the discovery document of {issuer} lacks {', '.join(missing)}")
    # A document that names another issuer could hand us another provider's keys (OIDC Discovery §4.3).
    if str(document["issuer"]).rstrip("/") != issuer:
        raise ProviderUnavailable(
            f"the discovery document of {issuer} names the issuer {document['issuer']!r}: "
            "set OIDC_ISSUER to it"
        )
    cache[issuer] = (time.monotonic(), document)
    return document


def provider_keys(*, jwks_uri: str, refresh: bool = False) -> list[dict[str, Any]]:
    """The provider's public keys (JWKS); `refresh` reads them again unless that was just done."""
    cache: dict[str, tuple[float, list[dict[str, Any]]]] = runtime().get("identity.jwks", dict)
    cached = cache.get(jwks_uri)
    if cached and not (refresh and time.monotonic() - cached[0] >= KEYS_MIN_REFRESH_S):
        return cached[1]
    keys = _get_json(jwks_uri).get("keys")
    if not isinstance(keys, list):
        raise ProviderUnavailable(f"{jwks_uri} holds no `keys` list")
    cache[jwks_uri] = (time.monotonic(), keys)
    return keys


def provider_cache_clear() -> None:
    """Forget documents and keys (tests; a changed OIDC_ISSUER)."""
    runtime().forget("identity.discovery")
    runtime().forget("identity.jwks")
