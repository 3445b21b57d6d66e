"""/ws/agent/: the Django session cookie identifies the agent, and the `Origin` must be one of
ALLOWED_HOSTS (a page on another site cannot use an agent's cookie). Only this route is
wrapped: the widget's /ws/chat/ is embedded on customers' own sites and authenticates by token."""

from channels.security.websocket import AllowedHostsOriginValidator
from django.urls import path

from .auth import SessionUserMiddleware
from .consumers import AgentConsumer

websocket_urlpatterns = [
    path("ws/agent/", AllowedHostsOriginValidator(SessionUserMiddleware(AgentConsumer.as_asgi()))),
]
