"""Customer identities for the widget (PROTOCOL.md §1)."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.db import IntegrityError, transaction

from .models import Customer
from .tokens import widget_token_issue


class IdentityVerificationFailed(Exception):
    """A `user_id` came without a valid `user_hash`."""


@dataclass(frozen=True)
class WidgetSession:
    customer: Customer
    token: str
    expires_at: datetime


def user_hash_for(*, user_id: str) -> str:
    """The hex HMAC-SHA256 of `user_id` under WIDGET_IDENTITY_SECRET (what host sites compute)."""
    key = settings.WIDGET_IDENTITY_SECRET.encode()
    return hmac.new(key, user_id.encode(), hashlib.sha256).hexdigest()


def customer_session_create(
    *, user_id: str | None = None, user_hash: str | None = None, name: str = "", email: str = ""
) -> WidgetSession:
    """Start (anonymous) or continue (verified `user_id`) a customer, and sign a token for it."""
    if user_id is None:
        customer = Customer.objects.create(name=name, email=email)
    else:
        if not user_hash or not hmac.compare_digest(user_hash_for(user_id=user_id), user_hash.lower()):
            raise IdentityVerificationFailed(user_id)
        customer = customer_identified_get_or_create(external_id=user_id, name=name, email=email)
    token, expires_at = widget_token_issue(customer_id=customer.pk)
    return WidgetSession(customer=customer, token=token, expires_at=expires_at)


def customer_identified_get_or_create(*, external_id: str, name: str = "", email: str = "") -> Customer:
    """The customer with this host-site id, created on first use; given name/email are kept."""
    try:
        with transaction.atomic():
            customer, created = Customer.objects.get_or_create(
                external_id=external_id, defaults={"name": name, "email": email}
            )
    except IntegrityError:  # two first sessions at once: the other one created it
        customer, created = Customer.objects.get(external_id=external_id), False
    changed = {k: v for k, v in {"name": name, "email": email}.items() if v and getattr(customer, k) != v}
    if not created and changed:
        for field, value in changed.items():
            setattr(customer, field, value)
        customer.save(update_fields=[*changed, "updated_at"])
    return customer
