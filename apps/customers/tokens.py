"""Widget tokens: signed, expiring proof of one customer id and nothing else."""

from __future__ import annotations

from datetime import datetime, timedelta
from uuid import UUID

from django.conf import settings
from django.core import signing
from django.utils import timezone

_SALT = "kefu.widget.customer"


class TokenInvalid(Exception):
    """The token is forged, malformed or expired."""


def widget_token_issue(*, customer_id: UUID | str) -> tuple[str, datetime]:
    """A token for this customer and the moment it stops being accepted."""
    token = signing.dumps({"c": str(customer_id)}, salt=_SALT, compress=False)
    return token, timezone.now() + timedelta(seconds=settings.WIDGET_TOKEN_MAX_AGE_S)


def widget_token_verify(*, token: str) -> UUID:
    """The customer id the token proves; TokenInvalid if it is forged or expired."""
    try:
        data = signing.loads(token, salt=_SALT, max_age=settings.WIDGET_TOKEN_MAX_AGE_S)
        return UUID(data["c"])
    except (signing.BadSignature, KeyError, TypeError, ValueError) as exc:
        raise TokenInvalid(str(exc)) from exc
