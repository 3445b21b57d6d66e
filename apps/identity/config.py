"""The SSO settings as the identity app uses them: the groups map, and the settings
mozilla-django-oidc asks for, answered from Kefu's OIDC_* settings and the provider's discovery
document (so an operator sets the issuer, never the endpoints)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from django.conf import settings
from django.urls import reverse

ROLE_ORDER = ("agent", "supervisor", "admin")  # a user in several mapped groups gets the highest
ANY_GROUP = "*"  # maps everyone the provider signs in (Google has no groups claim)


@dataclass(frozen=True)
class GroupRule:
    group: str
    kind: Literal["role", "team"]
    value: str


def groups_map_parse(text: str) -> list[GroupRule]:
    """OIDC_GROUPS_MAP: `group=role:<agent|supervisor|admin>` or `group=team:<slug>`, comma-separated;
    a group may appear more than once (a role and teams)."""
    rules = []
    for entry in (part.strip() for part in text.split(",")):
        if not entry:
            continue
        group, sep, target = entry.rpartition("=")
        kind, colon, value = target.partition(":")
        group, kind, value = group.strip(), kind.strip(), value.strip()
        if not sep or not group or not colon or not value or kind not in ("role", "team"):
            raise ValueError(
                f"OIDC_GROUPS_MAP entry {entry!r} is not `group=role:NAME` or `group=team:SLUG`"
            )
        if kind == "role" and value not in ROLE_ORDER:
            raise ValueError(
                f"OIDC_GROUPS_MAP entry {entry!r}: the role must be one of {', '.join(ROLE_ORDER)}"
            )
        rules.append(GroupRule(group=group, kind=kind, value=value))  # type: ignore[arg-type]
    return rules


def sso_enabled() -> bool:
    return bool(settings.OIDC_ISSUER)


def local_login_enabled() -> bool:
    return bool(settings.LOCAL_LOGIN_ENABLED)


def oidc_setting(attr: str, *default: Any) -> Any:
    """What mozilla-django-oidc's `get_settings` returns: ours first, then Django settings."""
    from .discovery import provider_metadata

    ours = {
        "OIDC_RP_CLIENT_ID": lambda: settings.OIDC_CLIENT_ID,
        "OIDC_RP_CLIENT_SECRET": lambda: settings.OIDC_CLIENT_SECRET,
        "OIDC_RP_SCOPES": lambda: settings.OIDC_SCOPES,
        "OIDC_RP_SIGN_ALGO": lambda: "RS256",
        "OIDC_USE_NONCE": lambda: True,
        "OIDC_USE_PKCE": lambda: True,
        "OIDC_PKCE_CODE_CHALLENGE_METHOD": lambda: "S256",
        "OIDC_STORE_ID_TOKEN": lambda: True,  # the id_token_hint of the provider's logout
        "OIDC_TIMEOUT": lambda: 10,
        "OIDC_AUTHENTICATION_CALLBACK_URL": lambda: "identity:callback",
        "OIDC_TOKEN_USE_BASIC_AUTH": lambda: token_auth_basic(provider_metadata()),
        "OIDC_OP_AUTHORIZATION_ENDPOINT": lambda: provider_metadata()["authorization_endpoint"],
        "OIDC_OP_TOKEN_ENDPOINT": lambda: provider_metadata()["token_endpoint"],
        "OIDC_OP_USER_ENDPOINT": lambda: provider_metadata().get("userinfo_endpoint"),
        "OIDC_OP_JWKS_ENDPOINT": lambda: provider_metadata()["jwks_uri"],
        "LOGIN_REDIRECT_URL": lambda: reverse("console:queue"),
        "LOGIN_REDIRECT_URL_FAILURE": lambda: reverse("console:login"),
    }
    if attr in ours:
        return ours[attr]()
    return getattr(settings, attr, *default) if default else getattr(settings, attr)


def token_auth_basic(metadata: dict[str, Any]) -> bool:
    """HTTP Basic for the client secret (the spec's default) unless the provider lists only
    `client_secret_post`; a public client (no secret) sends neither."""
    if not settings.OIDC_CLIENT_SECRET:
        return False
    methods = metadata.get("token_endpoint_auth_methods_supported") or ["client_secret_basic"]
    return "client_secret_basic" in methods
