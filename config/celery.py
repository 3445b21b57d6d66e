import os

from celery import Celery

# Production unless told otherwise: its settings refuse to start without real secrets and
# services (`make run` and the tests set DJANGO_SETTINGS_MODULE explicitly).
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.production")

app = Celery("kefu")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
