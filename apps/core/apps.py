from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "apps.core"
    label = "core"

    def ready(self) -> None:
        from django.core import checks

        from .checks import rate_limit_settings_check

        checks.register(rate_limit_settings_check)
