"""The one outbound policy for every request Kefu makes on someone's behalf (connector calls,
OAuth token URLs, imported `servers[0]`, outgoing webhooks).

A URL's host is resolved once, when the connection is opened; every address it resolves to
must be public (no loopback, private, link-local, CGNAT, multicast, reserved or cloud-metadata
address, nor an IPv4-mapped/6to4/NAT64 form of one) unless the host or host:port is listed in
`OUTBOUND_ALLOWED_HOSTS`. The socket then connects to the address that was checked, so a name
that re-resolves elsewhere (DNS rebinding) cannot slip between check and connect; TLS still
verifies the certificate for the name. Redirects are not followed and bodies are read up to a
cap, never further. Save-time checks (`outbound_url_check`) warn early; connect time decides.
"""

from __future__ import annotations

import ipaddress
import json
import socket
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpcore
import httpx
from django.conf import settings
from django.core.exceptions import ValidationError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_METADATA = frozenset(
    ipaddress.ip_address(a) for a in ("169.254.169.254", "fd00:ec2::254", "169.254.170.2", "100.100.100.200")
)
_CGNAT = ipaddress.ip_network("100.64.0.0/10")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
ALLOW_HINT = "If it is a system of yours, add its host to OUTBOUND_ALLOWED_HOSTS."


class OutboundRefused(Exception):
    """A request the policy will not make (or a response it will not read). `kind` is one of
    "address", "scheme", "redirect", "too_large"; `status` is the HTTP status, if any."""

    def __init__(self, message: str, *, kind: str = "address", status: int | None = None) -> None:
        super().__init__(message)
        self.kind, self.status = kind, status


def address_refusal(ip: IPAddress) -> str | None:
    """Why Kefu may not connect to `ip` ("a private address"), or None when it may."""
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = ip.ipv4_mapped or ip.sixtofour
        if embedded is None and ip in _NAT64:
            embedded = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if embedded is not None:
            return address_refusal(embedded)
    checks = (
        (ip in _METADATA, "a cloud metadata address"),
        (ip.is_loopback, "a loopback address"),
        (ip.is_unspecified, "an unspecified address"),
        (ip.is_link_local, "a link-local address"),
        (ip.is_multicast, "a multicast address"),
        (ip in _CGNAT, "a shared (CGNAT) address"),
        (ip.is_reserved, "a reserved address"),
        (ip.is_private, "a private address"),
        (getattr(ip, "is_site_local", False), "a site-local address"),
        (not ip.is_global, "a reserved address"),  # documentation, benchmarking, ...
    )
    for refused, reason in checks:
        if refused:
            return reason
    return None


def host_allowed(host: str, port: int) -> bool:
    """Listed in OUTBOUND_ALLOWED_HOSTS as `host` (any port) or `host:port`."""
    host = host.strip("[]").rstrip(".").lower()
    listed = {str(e).strip().lower() for e in getattr(settings, "OUTBOUND_ALLOWED_HOSTS", ())}
    return bool({host, f"{host}:{port}", f"[{host}]:{port}"} & listed)


def outbound_resolve(host: str, port: int) -> list[str]:
    """The addresses `host` resolves to now, every one allowed (or the host allow-listed).
    Raises OutboundRefused, or socket.gaierror when the name does not resolve."""
    host = host.strip("[]")
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
    if host_allowed(host, port):
        return addresses
    for address in addresses:
        reason = address_refusal(ipaddress.ip_address(address.split("%", 1)[0]))
        if reason is None:
            continue
        if address == host:
            raise OutboundRefused(f"refused: {host} is {reason}")
        raise OutboundRefused(f"refused: {host} resolves to {address}, {reason}")
    return addresses


def _split(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise OutboundRefused(
            f"refused: only http and https URLs are allowed, not {parts.scheme or 'none'!r}", kind="scheme"
        )
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise OutboundRefused(f"refused: {url[:200]} has an invalid port", kind="scheme") from None
    if not parts.hostname:
        raise OutboundRefused(f"refused: {url[:200]} names no host", kind="scheme")
    return parts.hostname, port


def outbound_url_check(url: str) -> None:
    """The save- and import-time check: raise OutboundRefused if `url` points somewhere the
    policy refuses now. A name that does not resolve yet passes: calls check it again anyway."""
    host, port = _split(url)
    try:
        outbound_resolve(host, port)
    except (socket.gaierror, UnicodeError):
        pass


def outbound_clean(**urls: str) -> None:
    """For a model's clean(): a ValidationError naming each refused URL field (blank ones pass)."""
    errors = {}
    for field, url in urls.items():
        if not url:
            continue
        try:
            outbound_url_check(url)
        except OutboundRefused as exc:
            errors[field] = f"{exc}. {ALLOW_HINT}" if exc.kind == "address" else str(exc)
    if errors:
        raise ValidationError(errors)


class _PolicyBackend(httpcore.NetworkBackend):
    """httpcore's sync backend, except that the host is resolved and checked here and the
    socket opened to that checked address (httpcore keeps the name for Host and TLS)."""

    def __init__(self) -> None:
        self._inner = httpcore.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        try:
            addresses = outbound_resolve(host, port)
        except (socket.gaierror, UnicodeError) as exc:
            raise httpcore.ConnectError(f"{host} does not resolve ({exc})") from None
        failure: Exception = httpcore.ConnectError(f"{host} has no address")
        for address in addresses:
            try:
                return self._inner.connect_tcp(
                    address, port, timeout=timeout, local_address=local_address, socket_options=socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                failure = exc
        raise failure

    def connect_unix_socket(self, path: str, timeout: float | None = None, socket_options: Any = None) -> Any:
        raise OutboundRefused("refused: Unix sockets are not reachable from outside")

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


class _PolicyTransport(httpx.HTTPTransport):
    def __init__(self, *, max_keepalive_connections: int) -> None:
        ssl_context = httpx.create_ssl_context()  # SSL_CERT_FILE/DIR still name the CA bundle
        super().__init__(verify=ssl_context, trust_env=False)  # and no proxy from the environment
        # httpx builds its pool without a way to pass a network backend: build it ourselves.
        self._pool = httpcore.ConnectionPool(
            ssl_context=ssl_context,
            max_keepalive_connections=max_keepalive_connections,
            network_backend=_PolicyBackend(),
        )


def outbound_client(*, max_keepalive_connections: int = 4) -> httpx.Client:
    """An httpx client under the policy: checked addresses, no redirects, no proxies from the
    environment, uncompressed answers (so a small compressed body cannot inflate past a cap)."""
    return httpx.Client(
        transport=_PolicyTransport(max_keepalive_connections=max_keepalive_connections),
        follow_redirects=False,
        trust_env=False,
        headers={"accept-encoding": "identity"},
    )


_local = threading.local()


def outbound_client_local() -> httpx.Client:
    """This thread's policy client: connections are reused and the TLS context (costly to
    build) is made once per worker thread instead of once per request."""
    client = getattr(_local, "client", None)
    if client is None:
        client = _local.client = outbound_client()
    return client


@dataclass(frozen=True)
class OutboundResponse:
    status_code: int
    headers: httpx.Headers
    content: bytes
    truncated: bool  # only with truncate=True: the body went past max_bytes and was cut

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", errors="replace")

    def json(self) -> Any:
        return json.loads(self.content)


def outbound_request(
    method: str,
    url: str,
    *,
    max_bytes: int,
    truncate: bool = False,
    client: httpx.Client | None = None,
    **kwargs: Any,
) -> OutboundResponse:
    """One request under the policy. The body is read up to `max_bytes`: past that it is
    refused (OutboundRefused kind "too_large"), or with `truncate` cut there; the rest is never
    read. A redirect is refused (kind "redirect"), not followed. Transport errors are httpx's."""
    host, _ = _split(url)
    client = client or outbound_client_local()
    with client.stream(method, url, follow_redirects=False, **kwargs) as response:
        status = response.status_code
        if response.has_redirect_location:
            location = response.headers.get("location", "")[:200]
            raise OutboundRefused(
                f"refused: {host} answered {status}, a redirect to {location}; redirects are not followed",
                kind="redirect",
                status=status,
            )
        too_large = OutboundRefused(
            f"refused: {host} sent more than {max_bytes} bytes", kind="too_large", status=status
        )
        declared = response.headers.get("content-length", "")
        if not truncate and declared.isdigit() and int(declared) > max_bytes:
            raise too_large
        body, size, cut = bytearray(), 0, False
        for chunk in response.iter_bytes():
            size += len(chunk)
            if size > max_bytes:
                if not truncate:
                    raise too_large
                body += chunk[: max_bytes - len(body)]
                cut = True
                break
            body += chunk
        return OutboundResponse(status, response.headers, bytes(body), cut)
