"""ASGI entry point: HTTP through Django, WebSockets through Channels' routers."""

import os

from django.core.asgi import get_asgi_application

# Production unless told otherwise, as manage.py and config.celery: its settings refuse to start
# without real secrets and services (`make run` and the Procfile under it, tests and benches set
# their module explicitly).
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.production")
django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.conf import settings  # noqa: E402

from apps.assistant.providers import provider_preload  # noqa: E402
from apps.conversations.language import language_preload  # noqa: E402
from apps.core.lifespan import lifespan_app  # noqa: E402
from apps.core.memory import collector_tune  # noqa: E402
from config.routing import websocket_urlpatterns  # noqa: E402

collector_tune(settings.GC_GEN0_THRESHOLD)  # before the servers' own start-up (Daphne has no lifespan)
provider_preload()
language_preload()

if settings.EMBEDDING_WARM_UP:
    from apps.knowledge.warm_up import knowledge_warm_up_start

    knowledge_warm_up_start()

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": URLRouter(websocket_urlpatterns),
        "lifespan": lifespan_app,
    }
)
