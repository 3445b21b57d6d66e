from django.apps import AppConfig


class ConsoleConfig(AppConfig):
    name = "apps.console"
    label = "console"

    def ready(self) -> None:
        # The layers below never import the console: it tells them what it listens to.
        from apps.conversations.audiences import Audience
        from apps.conversations.publisher import publisher
        from apps.conversations.services import conversation_waiting_handler_register

        from .assignment import auto_assign
        from .queue import queue_entries

        publisher().listen(Audience.QUEUE, queue_entries)
        conversation_waiting_handler_register(auto_assign)
