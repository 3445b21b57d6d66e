from django.apps import AppConfig


class WebhooksConfig(AppConfig):
    name = "apps.webhooks"
    label = "webhooks"

    def ready(self) -> None:
        # Conversations never import this app: it tells the publisher what it listens to.
        from apps.conversations.audiences import Audience
        from apps.conversations.publisher import publisher

        from .outgoing import outgoing_events_listen

        publisher().listen(Audience.WEBHOOKS, outgoing_events_listen)
