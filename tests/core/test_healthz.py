"""GET /healthz answers 200 only when database, Redis, channel layer and a worker answer."""

import pytest
from django.test import override_settings

from apps.core.embedded import EmbeddedRedis


@pytest.mark.django_db(transaction=True)
def test_healthz_is_ok_when_every_service_answers(client, celery_worker_live):
    response = client.get("/healthz")

    assert response.status_code == 200
    assert response.json() == {
        "status": "ok",
        "checks": {"database": "ok", "redis": "ok", "channel_layer": "ok", "celery": "ok"},
    }


@pytest.mark.django_db(transaction=True)
def test_healthz_names_redis_and_the_channel_layer_when_redis_stops(client, tmp_path):
    scratch = EmbeddedRedis(tmp_path / "redis", run_dir=tmp_path / "run")
    scratch.start()
    url = scratch.url()
    layers = {"default": {"BACKEND": "channels_redis.core.RedisChannelLayer",
                          "CONFIG": {"hosts": [{"address": url, "socket_timeout": 2}]}}}
    try:
        with override_settings(REDIS_URL=url, CHANNEL_LAYERS=layers):
            before = client.get("/healthz").json()["checks"]
            scratch.stop()
            response = client.get("/healthz")
    finally:
        scratch.stop()

    assert (before["redis"], before["channel_layer"]) == ("ok", "ok")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["checks"]["database"] == "ok"
    assert "ConnectionError" in body["checks"]["redis"]
    assert body["checks"]["channel_layer"] != "ok"


@pytest.mark.django_db(transaction=True)
def test_healthz_says_no_worker_answered_when_none_runs(client, settings):
    response = client.get("/healthz")

    assert response.status_code == 503
    queue = settings.CELERY_TASK_DEFAULT_QUEUE
    assert response.json()["checks"]["celery"] == f"no Celery worker consuming queue {queue!r} answered"
