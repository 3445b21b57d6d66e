from django.apps import AppConfig


class ReportsConfig(AppConfig):
    name = "apps.reports"
    label = "reports"

    def ready(self) -> None:
        # Conversations never import this app: the rollups hear of each committed change through
        # the publisher, like outgoing webhooks (every event that changes a figure reaches them).
        from apps.conversations.audiences import Audience
        from apps.conversations.publisher import publisher

        from .listener import facts_listen

        publisher().listen(Audience.WEBHOOKS, facts_listen)
