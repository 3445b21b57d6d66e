from django.apps import AppConfig


class AssistantConfig(AppConfig):
    name = "apps.assistant"
    label = "assistant"

    def ready(self) -> None:
        # Connectors never import the assistant: it tells them what an approved write makes due.
        from apps.connectors.services import tool_call_approved_handler_register
        from apps.core.runtime import runtime_component_register

        from .turn_store import turn_create
        from .turns import runner_handover, runner_start

        tool_call_approved_handler_register(turn_create)
        # This ASGI process's turn runner: started with the process, its turns handed over at
        # shutdown (Celery workers run no answers).
        runtime_component_register(
            "turns.runner", start=lambda _rt: runner_start(), stop=lambda _rt: runner_handover(),
            kinds=("asgi",),
        )
