from django.apps import AppConfig


class ConnectorsConfig(AppConfig):
    name = "apps.connectors"
    label = "connectors"

    def ready(self) -> None:
        from django.conf import settings

        from config.celery import app

        # Celery's Django fixup reads this when the worker starts (after Django is set up). Only
        # where connections persist: with CONN_MAX_AGE 0 (the tests) nothing may outlive a task.
        if settings.DATABASES["default"].get("CONN_MAX_AGE") and settings.WORKER_DB_REUSE_MAX:
            app.conf["CELERY_DB_REUSE_MAX"] = settings.WORKER_DB_REUSE_MAX
