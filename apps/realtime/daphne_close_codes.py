"""Let Daphne close sockets with RFC 6455 status codes such as 1008.

PROTOCOL.md closes abusive sockets with 1008 (policy violation), and silent ones with 1001
(going away). Autobahn's public `sendClose` accepts only 1000 and 3000-4999 and raises for
anything else, so Daphne cannot send them; its lower-level `sendCloseFrame` can. RFC 6455
§7.4.1 lets an endpoint send 1001-1003 and 1007-1011; only those take the lower path.
"""

from __future__ import annotations

RFC_SENDABLE = frozenset({1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011})


def allow_rfc_close_codes() -> None:
    try:
        from daphne.ws_protocol import WebSocketProtocol
    except ImportError:  # not served by Daphne
        return
    if getattr(WebSocketProtocol.serverClose, "_kefu_rfc_codes", False):
        return
    original = WebSocketProtocol.serverClose

    def server_close(self, code=None):
        if code in RFC_SENDABLE:
            self.sendCloseFrame(code=code, isReply=False)
        else:
            original(self, code=code)

    server_close._kefu_rfc_codes = True
    WebSocketProtocol.serverClose = server_close
