"""Who is on the other end of a request, and which proxies may say so.

The web server alone decides whether `X-Forwarded-For` counts: uvicorn replaces the peer
address with the forwarded client only when the peer is in `--forwarded-allow-ips`, which the
Procfile fills from TRUSTED_PROXIES (empty: trust no one). Django code therefore reads
REMOTE_ADDR and never the header itself: a client cannot pick the address it is limited or
identified by.
"""

from __future__ import annotations

import ipaddress

from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def client_ip(request: HttpRequest) -> IPAddress | None:
    """The client's address as the server saw it (a trusted proxy's forwarded client, or the
    peer), or None when the server gave none (a Unix socket, a test without one)."""
    try:
        return ipaddress.ip_address(request.META.get("REMOTE_ADDR", ""))
    except ValueError:
        return None


def trusted_proxies(entries: list[str]) -> str:
    """TRUSTED_PROXIES as uvicorn's `--forwarded-allow-ips` value ("" trusts no one); each entry
    an IP address or a CIDR network. A typo must not silently trust nothing (or everything)."""
    for entry in entries:
        try:
            ipaddress.ip_network(entry, strict=False)
        except ValueError:
            raise ImproperlyConfigured(
                f"TRUSTED_PROXIES: {entry!r} is not an IP address or network (e.g. 10.0.0.5 or "
                "10.0.0.0/8); list your load balancers' addresses, separated by commas."
            ) from None
    return ",".join(entries)
