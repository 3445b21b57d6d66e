from django.apps import AppConfig


class DevstackConfig(AppConfig):
    """An app only for its management commands (`kefu_run`, `demo_setup`); production leaves it out."""

    name = "apps.devstack"
    label = "devstack"
