"""Template context for every page: the signed-in staff member's role (apps/console/roles.py),
read only by templates that ask (the header's admin links, the customer panel)."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from django.utils.functional import SimpleLazyObject

from .roles import staff_role


def staff(request: HttpRequest) -> dict[str, Any]:
    user = getattr(request, "user", None)
    return {"staff_role": SimpleLazyObject(lambda: staff_role(user) if user and user.is_staff else "")}
