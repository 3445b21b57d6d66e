"""The HTTP/REST connector: a tool is a request template against the connector's base URL.

Placeholders `{argument}` come from the validated arguments, `{customer.external_id}` and
`{customer.email}` from the conversation's customer. Writes carry `Idempotency-Key`. Secrets go
into headers only and never into logs or errors."""

from __future__ import annotations

import logging
import re
import threading
import time
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import quote

import httpx

from apps.core.outbound import OutboundRefused, OutboundResponse, outbound_client_local, outbound_request
from apps.core.runtime import runtime

from .models import AuthType, Connector, Tool
from .registry import ExecResult, Identity, ToolError, backend_register
from .trim import trim

logger = logging.getLogger(__name__)

_PLACEHOLDER = re.compile(r"\{([A-Za-z0-9_.\-]+)\}")
_WHOLE = re.compile(r"^\{([A-Za-z0-9_.\-]+)\}$")
MAX_RESPONSE_BYTES = 1024 * 1024
MAX_TOKEN_RESPONSE_BYTES = 64 * 1024


def _value(name: str, arguments: dict[str, Any], identity: Identity | None) -> Any:
    if name.startswith("customer."):
        if identity is None:
            raise ToolError("This needs a signed-in customer.", code="identity_required")
        field = name.split(".", 1)[1]
        if field not in ("external_id", "email"):
            raise ToolError(f"Unknown customer field {field!r} in the tool's template.", code="misconfigured")
        return getattr(identity, field)
    return arguments.get(name)


def render(
    template: Any, arguments: dict[str, Any], identity: Identity | None, *, in_path: bool = False
) -> Any:
    """A template filled in: a whole "{x}" keeps x's JSON type; inside text, values are quoted
    for the URL path so an argument can never add a path segment."""
    if not isinstance(template, str):
        return template
    whole = _WHOLE.match(template)
    if whole and not in_path:
        return _value(whole.group(1), arguments, identity)

    def sub(m: re.Match[str]) -> str:
        value = _value(m.group(1), arguments, identity)
        text = "" if value is None else str(value)
        return quote(text, safe="") if in_path else text

    return _PLACEHOLDER.sub(sub, template)


def _mapped(mapping: dict[str, Any], arguments: dict[str, Any], identity: Identity | None) -> Any:
    if "*" in mapping:  # the whole body is one argument (an array, say)
        return render(mapping["*"], arguments, identity)
    out = {k: render(v, arguments, identity) for k, v in mapping.items()}
    return {k: v for k, v in out.items() if v is not None and v != ""}


# OAuth2 client-credentials tokens, per connector, until shortly before they expire; the cache
# is this process's, kept by its runtime (apps/core/runtime.py).
_tokens_lock = threading.Lock()


def _tokens() -> dict[int, tuple[str, float]]:
    return runtime().get("http.tokens", dict)


def _oauth2_token(connector: Connector, client: httpx.Client) -> str:
    with _tokens_lock:
        cached = _tokens().get(connector.pk)
        if cached and cached[1] > time.monotonic():
            return cached[0]
    data = {"grant_type": "client_credentials"}
    if connector.oauth2_scope:
        data["scope"] = connector.oauth2_scope
    try:
        response = outbound_request(
            "POST",
            connector.oauth2_token_url,
            max_bytes=MAX_TOKEN_RESPONSE_BYTES,
            client=client,
            data=data,
            auth=(connector.username, connector.secret),
        )
    except OutboundRefused as exc:
        raise _refused(exc) from None
    except httpx.HTTPError as exc:
        raise ToolError(f"Token endpoint unreachable ({type(exc).__name__}).", retryable=True) from None
    if response.status_code != 200:
        raise ToolError(
            f"Token endpoint answered {response.status_code}.",
            status=response.status_code,
            retryable=response.status_code >= 500,
        )
    body = response.json()
    token, ttl = body["access_token"], float(body.get("expires_in", 300))
    with _tokens_lock:
        _tokens()[connector.pk] = (token, time.monotonic() + max(ttl - 30, 10))
    return token


def _auth(connector: Connector, client: httpx.Client) -> tuple[dict[str, str], Any]:
    kind = connector.auth_type
    if kind == AuthType.BEARER:
        return {"Authorization": f"Bearer {connector.secret}"}, None
    if kind == AuthType.API_KEY_HEADER:
        return {connector.api_key_header or "X-API-Key": connector.secret}, None
    if kind == AuthType.BASIC:
        return {}, (connector.username, connector.secret)
    if kind == AuthType.OAUTH2_CLIENT_CREDENTIALS:
        return {"Authorization": f"Bearer {_oauth2_token(connector, client)}"}, None
    return {}, None


def _refused(exc: OutboundRefused) -> ToolError:
    # The outbound policy's refusals are final: retrying reaches the same address or answer.
    code = "too_large" if exc.kind == "too_large" else "refused"
    return ToolError(str(exc), status=exc.status, code=code)


def _retry_after(response: OutboundResponse) -> float | None:
    value = response.headers.get("Retry-After")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        try:
            return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
        except (TypeError, ValueError):
            return None


class HttpBackend:
    def execute(
        self,
        *,
        connector: Connector,
        tool: Tool,
        arguments: dict[str, Any],
        identity: Identity | None,
        idempotency_key: str,
    ) -> ExecResult:
        method = tool.method.upper()
        path = render(tool.path_template, arguments, identity, in_path=True)
        url = connector.base_url.rstrip("/") + "/" + path.lstrip("/")
        timeout = httpx.Timeout(connector.read_timeout_s, connect=connector.connect_timeout_s)
        client = outbound_client_local()  # the outbound policy's (apps/core/outbound.py)
        headers, auth = _auth(connector, client)
        headers["Accept"] = "application/json"
        if method not in ("GET", "HEAD"):
            headers["Idempotency-Key"] = idempotency_key
        body = (
            _mapped(tool.body_map, arguments, identity) if method not in ("GET", "HEAD", "DELETE") else None
        )
        try:
            response = outbound_request(
                method,
                url,
                max_bytes=MAX_RESPONSE_BYTES,
                client=client,
                params=_mapped(tool.query_map, arguments, identity),
                json=body,
                headers=headers,
                auth=auth,
                timeout=timeout,
            )
        except OutboundRefused as exc:
            raise _refused(exc) from None
        except httpx.TimeoutException:
            raise ToolError(
                f"{connector.name} did not answer in time.", retryable=True, code="timeout"
            ) from None
        except httpx.HTTPError as exc:
            raise ToolError(
                f"{connector.name} is unreachable ({type(exc).__name__}).",
                retryable=True,
                code="unreachable",
            ) from None
        status = response.status_code
        if status == 429 or status >= 500:
            raise ToolError(
                f"{connector.name} answered {status}.",
                status=status,
                retryable=True,
                retry_after=_retry_after(response),
                code="unavailable",
            )
        try:
            data = response.json() if response.content else None
        except ValueError:
            raise ToolError(
                f"{connector.name} sent a response that is not valid JSON.",
                status=status,
                retryable=True,
                code="malformed",
            ) from None
        if status >= 400:
            code = "not_found" if status == 404 else "rejected"
            message = data.get("message") if isinstance(data, dict) else None
            raise ToolError(
                str(message or f"{connector.name} answered {status}.")[:300], status=status, code=code
            )
        return ExecResult(status=status, data=trim(data, tool.response_fields))


backend_register("http", HttpBackend())
