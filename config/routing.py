"""WebSocket routes of every app, in one list."""

from django.urls import path

from apps.core.consumers import EchoConsumer

websocket_urlpatterns = [
    # A bare echo socket: the smoke test's target and the benchmarks' baseline.
    path("ws/echo/", EchoConsumer.as_asgi()),
]
