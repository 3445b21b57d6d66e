"""GET /healthz answers 200 only when database, Redis, channel layer and a worker answer. The
checks are shown to staff, the X-Healthz-Token header and (development) loopback clients; the
public sees the status alone."""

import subprocess
import sys
import time

import pytest
from celery.contrib.testing.worker import start_worker
from django.contrib.auth import get_user_model
from django.test import override_settings

from apps.core.health import celery_check_cache_clear, check_celery
from apps.devstack.embedded import EmbeddedRedis
from tests.support.process import REPO, service_env

ALL_OK = {"database": "ok", "redis": "ok", "channel_layer": "ok", "celery": "ok"}


@pytest.fixture(autouse=True)
def fresh_worker_check():
    # The worker check is cached per process; each test starts from an unknown worker state.
    celery_check_cache_clear()
    yield
    celery_check_cache_clear()


@pytest.fixture
def public(settings):
    """Requests as an anonymous client from a public address would be."""
    settings.HEALTHZ_DETAILS_TO_LOOPBACK = False
    settings.HEALTHZ_TOKEN = "t0ken-for-the-load-balancer-team"
    return settings


def wait_until_a_worker_answers() -> None:
    """An in-thread worker answers broadcasts once its control consumer is up, after the worker
    starts (seconds after, on a loaded machine). Its answer is then cached, as a running
    server's would be."""
    deadline = time.monotonic() + 30
    while check_celery() is not None:
        assert time.monotonic() < deadline, "the in-thread worker never answered a ping"
        celery_check_cache_clear()
        time.sleep(0.1)


@pytest.fixture
def worker_answering(celery_worker_live):
    wait_until_a_worker_answers()
    return celery_worker_live


@pytest.mark.django_db(transaction=True)
def test_healthz_is_ok_when_every_service_answers(client, worker_answering):
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
    layers = {"default": {"BACKEND": "apps.core.channel_layer.LocalFanoutChannelLayer",
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


@pytest.fixture
def scratch_redis(tmp_path):
    scratch = EmbeddedRedis(tmp_path / "redis", run_dir=tmp_path / "run")
    scratch.start()
    url = scratch.url()
    layers = {"default": {"BACKEND": "apps.core.channel_layer.LocalFanoutChannelLayer",
                          "CONFIG": {"hosts": [{"address": url, "socket_timeout": 2}]}}}
    with override_settings(REDIS_URL=url, CHANNEL_LAYERS=layers):
        yield scratch
    scratch.stop()


@pytest.mark.django_db(transaction=True)
def test_the_public_gets_the_status_alone(client, public, worker_answering):
    response = client.get("/healthz")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert response["Cache-Control"] == "no-store"


@pytest.mark.django_db(transaction=True)
def test_the_public_never_sees_which_check_failed_or_why(client, public, scratch_redis):
    scratch_redis.stop()

    response = client.get("/healthz")

    assert response.status_code == 503
    assert response.json() == {"status": "unavailable"}


@pytest.mark.django_db(transaction=True)
def test_the_token_header_and_staff_see_the_checks(client, public, worker_answering):
    with_token = client.get("/healthz", HTTP_X_HEALTHZ_TOKEN="t0ken-for-the-load-balancer-team")
    wrong_token = client.get("/healthz", HTTP_X_HEALTHZ_TOKEN="guess")
    staff = get_user_model().objects.create_user("ops", password="pw", is_staff=True)
    client.force_login(staff)
    as_staff = client.get("/healthz")

    assert with_token.json() == {"status": "ok", "checks": ALL_OK}
    assert wrong_token.json() == {"status": "ok"}
    assert as_staff.json() == {"status": "ok", "checks": ALL_OK}


@pytest.mark.django_db(transaction=True)
def test_the_worker_check_is_reused_instead_of_pinging_workers_on_every_request(client, settings):
    settings.HEALTHZ_CELERY_CACHE_S = 3600  # no clock in this test: the cache outlives it
    from config.celery import app

    with start_worker(app, pool="threads", concurrency=1, perform_ping_check=False,
                      queues=[settings.CELERY_TASK_DEFAULT_QUEUE], shutdown_timeout=30):
        wait_until_a_worker_answers()
        with_worker = client.get("/healthz").json()["checks"]["celery"]
    # The worker is gone; a request that pinged would say so, a cached answer does not.
    after_stop = client.get("/healthz").json()["checks"]["celery"]
    celery_check_cache_clear()
    after_expiry = client.get("/healthz").json()["checks"]["celery"]

    assert (with_worker, after_stop) == ("ok", "ok")
    assert after_expiry.startswith("no Celery worker consuming queue")


@pytest.mark.django_db(transaction=True)
def test_a_worker_is_found_among_workers_sharing_its_node_name(client, settings, tmp_path):
    """Workers started without -n on one host all answer as celery@<host>."""
    from config.celery import app

    queue = settings.CELERY_TASK_DEFAULT_QUEUE
    twin = f"twin@{queue}"
    log = tmp_path / "elsewhere.log"
    elsewhere = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "config", "worker", "-n", twin, "-Q", f"{queue}-elsewhere",
         "--pool", "solo", "--loglevel", "WARNING"],
        cwd=REPO, env=service_env(), stdout=log.open("w"), stderr=subprocess.STDOUT,
    )
    try:
        for _ in range(120):  # until the other worker answers broadcasts
            if app.control.ping(destination=[twin], timeout=0.5):
                break
            assert elsewhere.poll() is None, log.read_text()
        with start_worker(app, pool="threads", concurrency=1, perform_ping_check=False, hostname=twin,
                          queues=[queue], shutdown_timeout=30):
            wait_until_a_worker_answers()  # fails if the twin's answer hid this worker's queue
            checks = client.get("/healthz").json()["checks"]
    finally:
        elsewhere.terminate()
        elsewhere.wait(30)

    assert checks["celery"] == "ok"
