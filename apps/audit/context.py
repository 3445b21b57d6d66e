"""Where the current staff action comes from (the client's IP), without threading it through
every service: the HTTP middleware sets it per request, the agent socket at connect. Context
variables follow the call into apps.core.db's threads (asgiref copies the context)."""

from __future__ import annotations

from contextvars import ContextVar

_ip: ContextVar[str | None] = ContextVar("audit_ip", default=None)


def audit_ip_set(ip: str | None) -> None:
    """For the rest of this task or request (each socket and request has its own context)."""
    _ip.set(ip)


def audit_ip() -> str | None:
    return _ip.get()
