import os

from celery import Celery

# Production unless told otherwise, as manage.py and config.asgi: its settings refuse to start
# without real secrets and services (`make run` and the tests set DJANGO_SETTINGS_MODULE explicitly).
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.production")

app = Celery("kefu")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

# Task name prefix -> the area whose worker pool runs it when KEFU_CELERY_SPLIT_QUEUES is on.
QUEUE_AREAS = {
    "connectors.": "tools",
    "apps.connectors.": "tools",
    "apps.knowledge.": "ingestion",
    "apps.webhooks.": "webhooks",
    "apps.assistant.": "answers",
}


def route_by_area(name, args, kwargs, options, task=None, **kw):
    """With KEFU_CELERY_SPLIT_QUEUES, each area's tasks go to `<default queue>.<area>`, so a slow
    ingestion never waits in front of a customer's tool call; otherwise one queue for all."""
    from django.conf import settings

    if not settings.KEFU_CELERY_SPLIT_QUEUES:
        return None
    for prefix, area in QUEUE_AREAS.items():
        if name.startswith(prefix):
            return {"queue": f"{settings.CELERY_TASK_DEFAULT_QUEUE}.{area}"}
    return None


app.conf.task_routes = (route_by_area,)


def celery_queues() -> list[str]:
    """Every queue some worker must consume: the default one, plus each area's when split."""
    from django.conf import settings

    default = settings.CELERY_TASK_DEFAULT_QUEUE
    areas = sorted(set(QUEUE_AREAS.values())) if settings.KEFU_CELERY_SPLIT_QUEUES else []
    return [default, *(f"{default}.{area}" for area in areas)]
