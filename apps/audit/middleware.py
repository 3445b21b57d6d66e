"""Puts the client's address (as apps.core.net reads it: REMOTE_ADDR, which the server fills
from a trusted proxy only) where audit_record finds it."""

from __future__ import annotations

from asgiref.sync import iscoroutinefunction, markcoroutinefunction

from apps.core.net import client_ip

from .context import _ip


def _address(request) -> str | None:  # noqa: ANN001
    ip = client_ip(request)
    return str(ip) if ip is not None else None


class AuditContextMiddleware:
    sync_capable = True
    async_capable = True

    def __init__(self, get_response) -> None:  # noqa: ANN001
        self.get_response = get_response
        if iscoroutinefunction(get_response):
            markcoroutinefunction(self)

    def __call__(self, request):  # noqa: ANN001, ANN204
        if iscoroutinefunction(self):
            return self.__acall__(request)
        token = _ip.set(_address(request))
        try:
            return self.get_response(request)
        finally:
            _ip.reset(token)

    async def __acall__(self, request):  # noqa: ANN001, ANN204
        _ip.set(_address(request))  # each ASGI request runs in its own context copy
        return await self.get_response(request)
