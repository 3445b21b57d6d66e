from django.apps import AppConfig


class RealtimeConfig(AppConfig):
    name = "apps.realtime"
    label = "realtime"

    def ready(self) -> None:
        from .daphne_close_codes import allow_rfc_close_codes

        allow_rfc_close_codes()
