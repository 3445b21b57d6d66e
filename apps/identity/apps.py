from django.apps import AppConfig


class IdentityConfig(AppConfig):
    name = "apps.identity"
    label = "identity"
    verbose_name = "Single sign-on"

    def ready(self) -> None:
        from django.core import checks

        from .checks import sso_settings_check

        checks.register(sso_settings_check)
