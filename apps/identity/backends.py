"""Authentication backends: the password check (switchable off) and OpenID Connect sign-in.

Django builds a backend for every authenticate() and every session lookup (each agent-socket
heartbeat too): neither reads the provider in __init__."""

from __future__ import annotations

import logging
from typing import Any

import requests
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.core.exceptions import SuspiciousOperation
from django.http import HttpRequest
from mozilla_django_oidc.auth import OIDCAuthenticationBackend

from .config import groups_map_parse, local_login_enabled, oidc_setting, sso_enabled
from .discovery import ProviderUnavailable, provider_keys, provider_metadata
from .services import SignInRefused, oidc_user_sign_in
from .tokens import IdTokenInvalid, IdTokenUnknownKey, id_token_verify

logger = logging.getLogger(__name__)

REFUSAL_ATTR = "kefu_sso_refusal"  # set on the request for the callback page to explain


class PasswordBackend(ModelBackend):
    """Django's username/password check; refuses every password when LOCAL_LOGIN_ENABLED is false
    (the console's and the admin's forms, and anything else that calls authenticate())."""

    def authenticate(self, request: HttpRequest | None, username: str | None = None,
                     password: str | None = None, **kwargs: Any) -> Any:
        if not local_login_enabled():
            return None
        return super().authenticate(request, username=username, password=password, **kwargs)


class OidcBackend(OIDCAuthenticationBackend):
    """mozilla-django-oidc's code flow (with PKCE and nonce; the views store both in the
    session), with Kefu's ID token checks and user matching."""

    get_settings = staticmethod(oidc_setting)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.UserModel = get_user_model()

    def authenticate(self, request: HttpRequest | None, **kwargs: Any) -> Any:
        # Only the callback view passes `nonce`: password sign-ins pass through untouched.
        if request is None or "nonce" not in kwargs or not sso_enabled():
            return None
        try:
            metadata = provider_metadata()
            self.OIDC_OP_TOKEN_ENDPOINT = metadata["token_endpoint"]
            self.OIDC_OP_USER_ENDPOINT = metadata.get("userinfo_endpoint")
            self.OIDC_OP_JWKS_ENDPOINT = metadata["jwks_uri"]
            self.OIDC_RP_CLIENT_ID = settings.OIDC_CLIENT_ID
            self.OIDC_RP_CLIENT_SECRET = settings.OIDC_CLIENT_SECRET
            self.OIDC_RP_SIGN_ALGO = "RS256"
            self.OIDC_RP_IDP_SIGN_KEY = None
            self.issuer = str(metadata["issuer"])
            return super().authenticate(request, **kwargs)
        except SignInRefused as refusal:
            setattr(request, REFUSAL_ATTR, refusal)
        except (ProviderUnavailable, requests.RequestException) as exc:
            logger.warning("SSO sign-in failed: the identity provider: %s", exc)
            setattr(request, REFUSAL_ATTR, SignInRefused(
                "provider", "The identity provider did not complete the sign-in. Try again in a moment."
            ))
        except SuspiciousOperation as exc:
            logger.warning("SSO sign-in refused: %s", exc)
            setattr(request, REFUSAL_ATTR, SignInRefused(
                "token", "The identity provider's answer could not be verified, so you were not signed in."
            ))
        return None

    def verify_token(self, token: str, **kwargs: Any) -> dict[str, Any]:
        nonce = kwargs.get("nonce")
        if not token or not nonce:
            raise SuspiciousOperation("no ID token, or no nonce in this browser's session")
        check = {"token": token, "issuer": self.issuer, "client_id": self.OIDC_RP_CLIENT_ID, "nonce": nonce}
        try:
            try:
                return id_token_verify(keys=provider_keys(jwks_uri=self.OIDC_OP_JWKS_ENDPOINT), **check)
            except IdTokenUnknownKey:  # the provider may have rotated its keys
                return id_token_verify(keys=provider_keys(jwks_uri=self.OIDC_OP_JWKS_ENDPOINT, refresh=True),
                                       **check)
        except IdTokenInvalid as exc:
            raise SuspiciousOperation(f"ID token refused: {exc}") from exc

    def get_userinfo(self, access_token: str, id_token: str, payload: dict[str, Any]) -> dict[str, Any]:
        if not self.OIDC_OP_USER_ENDPOINT or not access_token:
            return {}
        return super().get_userinfo(access_token, id_token, payload)

    def get_or_create_user(self, access_token: str, id_token: str, payload: dict[str, Any]) -> Any:
        userinfo = self.get_userinfo(access_token, id_token, payload)
        if userinfo and str(userinfo.get("sub")) != str(payload["sub"]):
            raise SuspiciousOperation("the userinfo answer is about another subject")
        claims = {**payload, **userinfo, "sub": payload["sub"]}  # groups may come from either
        return oidc_user_sign_in(
            issuer=self.issuer, claims=claims, rules=groups_map_parse(settings.OIDC_GROUPS_MAP),
            groups_claim=settings.OIDC_GROUPS_CLAIM, match_email=settings.OIDC_MATCH_EMAIL,
        )
