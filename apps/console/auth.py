"""Who is on an agent socket: the Django session cookie, read on the bounded DB pool.

Channels' AuthMiddlewareStack loads the session and user through the thread-sensitive
`database_sync_to_async`, i.e. on the one thread every such call of the process shares
(DESIGN.md, known traps); this does the same work through apps.core.db.db_async.
"""

from __future__ import annotations

from http.cookies import SimpleCookie
from importlib import import_module
from types import SimpleNamespace
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user
from django.contrib.auth.models import AnonymousUser

from apps.core.db import db_async


def user_for_session(*, session_key: str | None) -> Any:
    """The signed-in user of this session (its auth hash checked), or AnonymousUser."""
    if not session_key:
        return AnonymousUser()
    session = import_module(settings.SESSION_ENGINE).SessionStore(session_key)
    return get_user(SimpleNamespace(session=session))


def console_allowed(user: Any) -> bool:
    """Who may hold a console socket: an active staff account."""
    return bool(user is not None and user.is_authenticated and user.is_active and user.is_staff)


def console_user_current(*, session_key: str | None, agent_id: int) -> Any | None:
    """The socket's agent as the database has them now, or None once they may no longer use the
    console: deactivated, staff rights removed, signed out, or password changed elsewhere."""
    user = user_for_session(session_key=session_key)
    return user if console_allowed(user) and user.pk == agent_id else None


def session_key_of(scope: dict[str, Any]) -> str | None:
    for name, value in scope.get("headers", []):
        if name == b"cookie":
            cookie = SimpleCookie()
            cookie.load(value.decode("latin-1"))
            morsel = cookie.get(settings.SESSION_COOKIE_NAME)
            return morsel.value if morsel else None
    return None


class SessionUserMiddleware:
    """Puts `user` in the socket's scope (ASGI middleware for /ws/agent/)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Any:
        user = await db_async(user_for_session)(session_key=session_key_of(scope))
        return await self.inner(dict(scope, user=user), receive, send)
