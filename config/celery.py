import os

from celery import Celery, signals

# Production unless told otherwise, as manage.py and config.asgi: its settings refuse to start
# without real secrets and services (`make run` and the tests set DJANGO_SETTINGS_MODULE explicitly).
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.production")

app = Celery("kefu")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


# The process's runtime (apps/core/runtime.py) in each process that runs tasks: a prefork child,
# or the worker itself with the solo pool (which sends worker_process_init too). A prefork
# child closes it on its way out; the components the apps registered start and stop with it.
@signals.worker_process_init.connect
def runtime_start(**kwargs) -> None:
    from apps.core.runtime import runtime

    runtime().start_sync("worker")


@signals.worker_process_shutdown.connect
def runtime_stop(**kwargs) -> None:
    from apps.core.runtime import runtime

    runtime().stop_sync()

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
