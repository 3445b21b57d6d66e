"""WebSocket routes of every app, in one list."""

from django.conf import settings
from django.urls import path

from apps.console.routing import websocket_urlpatterns as console_patterns
from apps.core.consumers import EchoConsumer
from apps.realtime.routing import websocket_urlpatterns as realtime_patterns

websocket_urlpatterns = [
    *realtime_patterns,
    # The agent console: session cookie + Origin check on this route only.
    *console_patterns,
    # A bare echo socket: the smoke test's target and the benchmarks' baseline. Development only:
    # it has no authentication and no limits (KEFU_DEMO_PAGES is off in production).
    *([path("ws/echo/", EchoConsumer.as_asgi())] if settings.KEFU_DEMO_PAGES else []),
]
