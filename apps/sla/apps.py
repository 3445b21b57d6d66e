from django.apps import AppConfig


class SlaConfig(AppConfig):
    name = "apps.sla"
    label = "sla"
    verbose_name = "SLA"

    def ready(self) -> None:
        # Conversations never import this app: their state changes call it through the handler.
        from apps.conversations.services import conversation_state_handler_register

        from .services import sla_state_changed

        conversation_state_handler_register(sla_state_changed)
