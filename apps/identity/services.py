"""Signing a staff member in from the provider's claims: find their Kefu user by (issuer, sub),
else (when allowed) by a verified e-mail, else create one; then apply the groups claim through
OIDC_GROUPS_MAP — the role (agent/supervisor/admin) and the mapped teams — at every sign-in, so
a change at the provider shows here at the next sign-in.

Nobody is created without a mapped role; a linked user whose groups no longer map to a role
loses the console (role groups and staff flag removed; superusers keep their flag, which only
superusers manage in admin) and is refused."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import transaction
from django.utils import timezone

from apps.audit.services import audit_record
from apps.console.roles import ROLES, Role, role_join
from apps.teams.models import Team

from .config import ANY_GROUP, ROLE_ORDER, GroupRule
from .models import OidcIdentity

logger = logging.getLogger(__name__)


class SignInRefused(Exception):
    """Why this provider account may not use Kefu, in words for the person signing in."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason, self.message = reason, message


@dataclass(frozen=True)
class Grants:
    role: Role | None
    teams: frozenset[str]  # slugs the groups give
    managed_teams: frozenset[str]  # slugs the map names: membership of these follows the provider


def claim_groups(*, claims: dict[str, Any], claim: str) -> set[str]:
    """The groups claim as a set of names (a list, or a single string, or absent)."""
    value = claims.get(claim)
    if isinstance(value, str):
        return {value}
    if isinstance(value, list):
        return {str(item) for item in value}
    return set()


def grants_for(*, groups: Iterable[str], rules: list[GroupRule]) -> Grants:
    held = set(groups) | {ANY_GROUP}
    roles = [r.value for r in rules if r.kind == "role" and r.group in held]
    role = max(roles, key=ROLE_ORDER.index) if roles else None
    teams = frozenset(r.value for r in rules if r.kind == "team" and r.group in held)
    managed = frozenset(r.value for r in rules if r.kind == "team")
    return Grants(role=role, teams=teams, managed_teams=managed)  # type: ignore[arg-type]


def _email_verified(claims: dict[str, Any]) -> bool:
    value = claims.get("email_verified")
    return value is True or (isinstance(value, str) and value.lower() == "true")  # some send a string


def _username_for(*, issuer: str, subject: str, claims: dict[str, Any]) -> str:
    User = get_user_model()
    base = str(claims.get("preferred_username") or claims.get("email") or f"sso-{subject}")[:140]
    if not User.objects.filter(username__iexact=base).exists():
        return base
    # Never take over the account that owns the name: a provider user may pick any username.
    return f"{base}-{hashlib.sha256(f'{issuer} {subject}'.encode()).hexdigest()[:8]}"


def _user_by_verified_email(*, claims: dict[str, Any], match_email: bool) -> Any | None:
    email = claims.get("email")
    if not (match_email and email and _email_verified(claims)):
        return None
    users = list(get_user_model().objects.filter(email__iexact=email, oidc_identity__isnull=True)[:2])
    return users[0] if len(users) == 1 else None


def _profile_update(user: Any, claims: dict[str, Any]) -> None:
    if claims.get("email"):
        user.email = str(claims["email"])[:254]
    first, last = claims.get("given_name"), claims.get("family_name")
    if not first and not last and claims.get("name"):
        first, _, last = str(claims["name"]).partition(" ")
    if first or last:
        user.first_name, user.last_name = str(first or "")[:150], str(last or "")[:150]


def _teams_apply(user: Any, grants: Grants) -> None:
    teams = list(Team.objects.filter(slug__in=grants.managed_teams))
    unknown = grants.teams - {t.slug for t in teams}
    if unknown:
        logger.warning("OIDC_GROUPS_MAP names teams that do not exist: %s", ", ".join(sorted(unknown)))
    user.teams.remove(*[t for t in teams if t.slug not in grants.teams])
    user.teams.add(*[t for t in teams if t.slug in grants.teams])


def _role_apply(user: Any, role: Role | None) -> None:
    if role is not None:
        user.is_staff = True
        user.save()
        role_join(user=user, role=role)
        return
    user.groups.remove(*Group.objects.filter(name__in=ROLES))
    if not user.is_superuser:
        user.is_staff = False
    user.save()


def _access_of(user: Any) -> dict[str, Any]:
    return {
        "staff": user.is_staff,
        "roles": sorted(user.groups.filter(name__in=ROLES).values_list("name", flat=True)),
        "teams": sorted(user.teams.values_list("slug", flat=True)),
    }


@transaction.atomic
def _sign_in_apply(*, issuer: str, claims: dict[str, Any], grants: Grants, match_email: bool) -> Any | None:
    subject = str(claims["sub"])
    link = OidcIdentity.objects.select_for_update().select_related("user").filter(
        issuer=issuer, subject=subject
    ).first()
    user = link.user if link else None
    if user is None:
        if grants.role is None:
            return None  # nobody is created for a provider account Kefu gives nothing
        user = _user_by_verified_email(claims=claims, match_email=match_email)
        if user is None:
            username = _username_for(issuer=issuer, subject=subject, claims=claims)
            user = get_user_model()(username=username)
            user.set_unusable_password()  # signs in through the provider only
            user.save()
        link = OidcIdentity.objects.create(user=user, issuer=issuer, subject=subject)
    if not user.is_active:
        return user
    _profile_update(user, claims)
    was = _access_of(user)
    _role_apply(user, grants.role)
    _teams_apply(user, grants)
    if (now := _access_of(user)) != was:  # what the provider's groups changed: a role change
        audit_record(actor=None, actor_label=f"OIDC sign-in ({issuer})", action="identity.access_sync",
                     target=user, before=was, after=now)
    link.last_sign_in_at = timezone.now()
    link.save(update_fields=["last_sign_in_at"])
    return user


def oidc_user_sign_in(
    *, issuer: str, claims: dict[str, Any], rules: list[GroupRule], groups_claim: str, match_email: bool
) -> Any:
    """The Kefu user for these (verified) claims, with role and teams applied; or SignInRefused.
    The changes are saved before a refusal: a demoted user stays demoted."""
    groups = claim_groups(claims=claims, claim=groups_claim)
    grants = grants_for(groups=groups, rules=rules)
    user = _sign_in_apply(issuer=issuer, claims=claims, grants=grants, match_email=match_email)
    if user is not None and not user.is_active:
        raise SignInRefused("inactive", "Your Kefu account is deactivated. Ask a Kefu administrator.")
    if user is None or grants.role is None:
        raise SignInRefused(
            "no_role",
            "Your account is in none of the groups that give access to Kefu (agent, supervisor or "
            "admin). Ask your administrator to add you to one, then sign in again.",
        )
    return user
