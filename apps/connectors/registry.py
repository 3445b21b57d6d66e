"""The connector interface and its registry (Saleor's plugin manager, small): one module per
kind of system implements `ConnectorBackend.execute`; the rest of Kefu calls `backend_for`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from .models import Connector, Tool


@dataclass(frozen=True)
class Identity:
    """The authenticated customer, from the conversation (never from the model)."""

    external_id: str
    email: str


def identity_of(customer: Any) -> Identity | None:
    """What a tool may know of the conversation's customer: nothing for an anonymous visitor, and
    the e-mail only when it was verified (a signed JWT or the CRM), never one the visitor typed."""
    if customer.is_anonymous:
        return None
    return Identity(external_id=customer.external_id, email=customer.email if customer.email_verified else "")


class NeedsOfCustomer(Protocol):
    """What a tool needs of the customer (a Tool row, or a turn's listing of one)."""

    @property
    def needs_identity(self) -> bool: ...

    @property
    def needs_email(self) -> bool: ...


def identity_missing(tool: NeedsOfCustomer, identity: Identity | None) -> bool:
    """True when the tool needs an identity (or a verified e-mail) the customer has not proved."""
    if not tool.needs_identity:
        return False
    return identity is None or (tool.needs_email and not identity.email)


@dataclass(frozen=True)
class ExecResult:
    status: int
    data: Any


class ToolError(Exception):
    """A call that failed; `retryable` for timeouts, 5xx and 429 (after `retry_after` s)."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        retryable: bool = False,
        retry_after: float | None = None,
        code: str = "error",
    ) -> None:
        super().__init__(message)
        self.message, self.status, self.retryable, self.retry_after, self.code = (
            message,
            status,
            retryable,
            retry_after,
            code,
        )


class ConnectorBackend(Protocol):
    def execute(
        self,
        *,
        connector: Connector,
        tool: Tool,
        arguments: dict[str, Any],
        identity: Identity | None,
        idempotency_key: str,
    ) -> ExecResult:
        """Run one tool call against the system; raise ToolError when it fails."""
        ...


_BACKENDS: dict[str, ConnectorBackend] = {}


def backend_register(kind: str, backend: ConnectorBackend) -> None:
    _BACKENDS[kind] = backend


def backend_for(kind: str) -> ConnectorBackend:
    if not _BACKENDS:
        from . import http  # noqa: F401 (registers "http")
    try:
        return _BACKENDS[kind]
    except KeyError:
        raise ToolError(f"No connector backend for kind {kind!r}.", code="misconfigured") from None
