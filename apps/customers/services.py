"""Customer identities for the widget (PROTOCOL.md §1)."""

from __future__ import annotations

import hashlib
import hmac
import time
from dataclasses import dataclass
from datetime import datetime

import jwt
from django.conf import settings
from django.db import IntegrityError, transaction

from .models import Customer
from .tokens import widget_token_issue


class IdentityVerificationFailed(Exception):
    """A `user_id` came without a valid `user_hash`, or a `user_jwt` is invalid or expired."""


@dataclass(frozen=True)
class VerifiedIdentity:
    user_id: str
    name: str = ""
    email: str = ""


@dataclass(frozen=True)
class WidgetSession:
    customer: Customer
    token: str
    expires_at: datetime


def user_hash_for(*, user_id: str) -> str:
    """The hex HMAC-SHA256 of `user_id` under WIDGET_IDENTITY_SECRET (what host sites compute)."""
    key = settings.WIDGET_IDENTITY_SECRET.encode()
    return hmac.new(key, user_id.encode(), hashlib.sha256).hexdigest()


def user_hash_verify(*, user_id: str, user_hash: str | None) -> None:
    """PROTOCOL.md §1's `user_hash`. It never expires: a hash that leaks (from a page, a log)
    proves that user forever, until WIDGET_IDENTITY_SECRET changes. `user_jwt` expires."""
    if not settings.WIDGET_USER_HASH_ENABLED:
        raise IdentityVerificationFailed("user_hash is off (WIDGET_USER_HASH_ENABLED=false): use user_jwt")
    # compare_digest refuses non-ASCII str with TypeError; such a hash is simply wrong.
    if not user_hash or not user_hash.isascii():
        raise IdentityVerificationFailed(user_id)
    if not hmac.compare_digest(user_hash_for(user_id=user_id), user_hash.lower()):
        raise IdentityVerificationFailed(user_id)


def user_jwt_verify(*, user_jwt: str) -> VerifiedIdentity:
    """A JWT signed by the host site's server: HS256 with WIDGET_IDENTITY_SECRET, `sub` = the
    user id, `exp` required (at most WIDGET_JWT_MAX_AGE_S ahead), optional `name` and `email`."""
    try:
        claims = jwt.decode(user_jwt, settings.WIDGET_IDENTITY_SECRET, algorithms=["HS256"],
                            options={"require": ["exp", "sub"]}, leeway=30)
    except jwt.PyJWTError as exc:
        raise IdentityVerificationFailed(str(exc)) from exc
    if claims["exp"] - time.time() > settings.WIDGET_JWT_MAX_AGE_S:
        raise IdentityVerificationFailed("exp is further ahead than WIDGET_JWT_MAX_AGE_S")
    sub, name, email = claims["sub"], claims.get("name", ""), claims.get("email", "")
    if not (isinstance(sub, str) and 0 < len(sub) <= 255):
        raise IdentityVerificationFailed("sub must be the user id, 1..255 characters")
    if not (isinstance(name, str) and len(name) <= 200 and isinstance(email, str) and len(email) <= 254):
        raise IdentityVerificationFailed("name and email claims must be short strings")
    return VerifiedIdentity(user_id=sub, name=name, email=email)


def customer_session_create(
    *, user_id: str | None = None, user_hash: str | None = None, user_jwt: str | None = None,
    name: str = "", email: str = "",
) -> WidgetSession:
    """Start (anonymous) or continue (verified `user_id` or `user_jwt`) a customer, and sign a
    token for it. Unsigned name/email only fill in a customer being created; the JWT's signed
    claims also update an existing one."""
    if user_jwt is not None:
        identity = user_jwt_verify(user_jwt=user_jwt)
        if user_id is not None and user_id != identity.user_id:
            raise IdentityVerificationFailed("user_id differs from the JWT's sub")
        customer = customer_identified_get_or_create(
            external_id=identity.user_id, name=identity.name, email=identity.email
        )
    elif user_id is None:
        customer = Customer.objects.create(name=name, email=email)
    else:
        user_hash_verify(user_id=user_id, user_hash=user_hash)
        customer = customer_identified_get_or_create(external_id=user_id, name=name, email=email,
                                                     update_existing=False)
    token, expires_at = widget_token_issue(customer_id=customer.pk)
    return WidgetSession(customer=customer, token=token, expires_at=expires_at)


def customer_identified_get_or_create(
    *, external_id: str, name: str = "", email: str = "", update_existing: bool = True
) -> Customer:
    """The customer with this host-site id, created on first use with name/email. Only trusted
    callers (signed JWT claims, the demo set-up) pass update_existing=True to change them later."""
    try:
        with transaction.atomic():
            customer, created = Customer.objects.get_or_create(
                external_id=external_id, defaults={"name": name, "email": email}
            )
    except IntegrityError:  # two first sessions at once: the other one created it
        customer, created = Customer.objects.get(external_id=external_id), False
    changed = {k: v for k, v in {"name": name, "email": email}.items() if v and getattr(customer, k) != v}
    if not created and changed and update_existing:
        for field, value in changed.items():
            setattr(customer, field, value)
        customer.save(update_fields=[*changed, "updated_at"])
    return customer
