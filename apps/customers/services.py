"""Customer identities for the widget (PROTOCOL.md §1)."""

from __future__ import annotations

import hashlib
import hmac
import time
from dataclasses import dataclass
from datetime import datetime

import jwt
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, connection, transaction

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
    """A JWT signed by the host site's server: HS256 with WIDGET_JWT_SECRET (never the user_hash
    key), `sub` = the user id, `exp` required (at most WIDGET_JWT_MAX_AGE_S ahead), `aud`
    required (WIDGET_JWT_AUDIENCE), `iss` when WIDGET_JWT_ISSUER is set, optional `name`, `email`."""
    secret = settings.WIDGET_JWT_SECRET
    if not secret:
        raise IdentityVerificationFailed("JWT sessions are off: WIDGET_JWT_SECRET is empty")
    # One key for both would make a user_hash of a chosen user_id ("<header>.<payload>") a valid
    # JWT signature. Production refuses to start that way; this also covers any other settings.
    if hmac.compare_digest(secret.encode(), settings.WIDGET_IDENTITY_SECRET.encode()):
        raise IdentityVerificationFailed("WIDGET_JWT_SECRET equals WIDGET_IDENTITY_SECRET")
    issuer = settings.WIDGET_JWT_ISSUER or None
    try:
        claims = jwt.decode(
            user_jwt, secret, algorithms=["HS256"], audience=settings.WIDGET_JWT_AUDIENCE,
            issuer=issuer, options={"require": ["exp", "sub", "aud"]}, leeway=30,
        )
    except jwt.PyJWTError as exc:
        raise IdentityVerificationFailed(str(exc)) from exc
    if claims["exp"] - time.time() > settings.WIDGET_JWT_MAX_AGE_S:
        raise IdentityVerificationFailed("exp is further ahead than WIDGET_JWT_MAX_AGE_S")
    sub, name, email = claims["sub"], claims.get("name", ""), claims.get("email", "")
    if not (isinstance(sub, str) and 0 < len(sub) <= 255):
        raise IdentityVerificationFailed("sub must be the user id, 1..255 characters")
    if not (isinstance(name, str) and len(name) <= 200 and isinstance(email, str) and len(email) <= 254):
        raise IdentityVerificationFailed("name and email claims must be short strings")
    if email:
        try:
            validate_email(email)
        except ValidationError as exc:
            raise IdentityVerificationFailed("the email claim is not an e-mail address") from exc
    return VerifiedIdentity(user_id=sub, name=name, email=email)


def customer_session_create(
    *, user_id: str | None = None, user_hash: str | None = None, user_jwt: str | None = None,
    name: str = "", email: str = "",
) -> WidgetSession:
    """Start (anonymous) or continue (verified `user_id` or `user_jwt`) a customer, and sign a
    token for it. Unsigned name/email only fill in a customer being created and are never
    verified; the JWT's signed claims also update an existing one, and its e-mail is verified."""
    if user_jwt is not None:
        identity = user_jwt_verify(user_jwt=user_jwt)
        if user_id is not None and user_id != identity.user_id:
            raise IdentityVerificationFailed("user_id differs from the JWT's sub")
        customer = customer_identified_get_or_create(
            external_id=identity.user_id, name=identity.name, email=identity.email,
            email_verified=bool(identity.email),
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
    *, external_id: str, name: str = "", email: str = "", email_verified: bool = False,
    update_existing: bool = True,
) -> Customer:
    """The customer with this host-site id, created on first use with name/email. Only trusted
    callers (signed JWT claims, the demo set-up) pass update_existing=True to change them later.

    `email_verified` says the e-mail was proved (a signed JWT, the CRM itself): only such an
    e-mail lets CRM events and tools find the customer by address. An unproved e-mail that
    replaces the stored one leaves the customer unverified."""
    verified = bool(email) and email_verified
    try:
        with transaction.atomic():
            customer, created = Customer.objects.get_or_create(
                external_id=external_id, defaults={"name": name, "email": email, "email_verified": verified}
            )
    except IntegrityError:  # two first sessions at once: the other one created it
        customer, created = Customer.objects.get(external_id=external_id), False
    if created or not update_existing:
        return customer
    changed: dict[str, object] = {}
    if name and customer.name != name:
        changed["name"] = name
    if email and customer.email != email:
        changed["email"], changed["email_verified"] = email, verified
    elif email and verified and not customer.email_verified:
        changed["email_verified"] = True
    if changed:
        for field, value in changed.items():
            setattr(customer, field, value)
        customer.save(update_fields=[*changed, "updated_at"])
    return customer


# One statement under the customer's row lock, so concurrent answers (two tabs, two processes)
# count exactly: the lock is taken first (a waiter then reads the hits its predecessor wrote),
# and the hit is kept only when every window still has room. The window is the chat message
# rate's too (core migration 0002).
_ANSWER_ADMIT = """
WITH locked AS (
  SELECT id, answer_hits FROM customers_customer WHERE id = %(customer)s FOR NO KEY UPDATE
)
UPDATE customers_customer cu
   SET answer_hits = kefu_window_hit(locked.answer_hits, %(amounts)s::int[])
  FROM locked
 WHERE cu.id = locked.id
   AND kefu_window_wait_s(locked.answer_hits, %(amounts)s::int[], %(windows)s::int[]) = 0
RETURNING 1
"""


def customer_answer_admit(*, customer_id: str, amounts: list[int], windows_s: list[int]) -> bool:
    """Count one answer for the customer against the moving windows (`amounts[i]` answers per
    `windows_s[i]` seconds, from apps.core.ratelimit.limit_windows); False, counting nothing,
    when a window is full. No windows: always True, nothing written."""
    if not amounts:
        return True
    with connection.cursor() as cursor:
        cursor.execute(_ANSWER_ADMIT, {"customer": customer_id, "amounts": amounts, "windows": windows_s})
        return cursor.fetchone() is not None
