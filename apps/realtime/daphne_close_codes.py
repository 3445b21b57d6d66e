"""Let Daphne close sockets with RFC 6455 status codes such as 1008 and 1009.

PROTOCOL.md closes abusive sockets with 1008 (policy violation), silent ones with 1001
(going away), and a frame over 1 MiB with 1009 (message too big). Autobahn's public
`sendClose` accepts only 1000 and 3000-4999 and raises for anything else, so Daphne cannot
send them; its lower-level `sendCloseFrame` can. RFC 6455 §7.4.1 lets an endpoint send
1001-1003 and 1007-1011; only those take the lower path.

The 1 MiB limit itself is Daphne's `--websocket-max-frame-size` / `--websocket-max-message-size`
(1 MiB by default, checked on a frame's header, before its payload is read). Autobahn then fails
the connection by dropping it (`failByDrop`), so the client never learns why: for that failure
the socket is closed with 1009 instead.
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
    too_big = WebSocketProtocol._max_message_size_exceeded

    def server_close(self, code=None):
        if code in RFC_SENDABLE:
            self.sendCloseFrame(code=code, isReply=False)
        else:
            original(self, code=code)

    def close_1009(self, msg_size, max_msg_size, reason):
        self.failByDrop = False  # this connection is failing: answer with its close frame
        too_big(self, msg_size, max_msg_size, reason)

    server_close._kefu_rfc_codes = True
    WebSocketProtocol.serverClose = server_close
    WebSocketProtocol._max_message_size_exceeded = close_1009
