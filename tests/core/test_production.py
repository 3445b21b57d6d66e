"""Production refuses development defaults, routes no demo pages, and the demo agent is no
superuser whose password demo_setup resets (issue 12, "What is wrong today")."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

from tests.support.process import REPO

SECRETS = {
    "DJANGO_SECRET_KEY": "x7#Lq9!vR2mZ@pW4sT6^yU8&iO0*aS3dF5gH1jK7lZ9xC2vB4nM6",
    "WIDGET_IDENTITY_SECRET": "a-long-random-identity-secret-for-the-tests",
    "DEMO_WEBHOOK_SECRET": "whsec_dGVzdC1wcm9kdWN0aW9uLXdlYmhvb2stc2VjcmV0LTMy",
    "DATABASE_URL": "postgres://kefu:pw@127.0.0.1:1/kefu",
    "REDIS_URL": "redis://127.0.0.1:1/0",
    "DJANGO_ALLOWED_HOSTS": "kefu.example.com",
    "KEFU_SECRET_KEYS": "Q3l0b2dyYXBoeS10ZXN0LWtleS1vZi0zMi1ieXRlcyE=",
}
DEV_DEFAULTS = {
    "DJANGO_SECRET_KEY": "kefu-dev-insecure-secret-key-change-me-in-production",
    "WIDGET_IDENTITY_SECRET": "kefu-demo-identity-secret",
    "DEMO_WEBHOOK_SECRET": "whsec_a2VmdS1kZW1vLXdlYmhvb2stc2VjcmV0LTMyYnl0ZXM=",
    "WIDGET_JWT_SECRET": "kefu-demo-jwt-secret-published-not-for-production",
}


def run(args: list[str], env: dict[str, str], tmp_path) -> subprocess.CompletedProcess:
    base = {"PATH": "/usr/bin:/bin", "HOME": "/tmp", "KEFU_VAR_DIR": str(tmp_path / "var")}
    return subprocess.run([sys.executable, *args], cwd=REPO, env=base | env,
                          capture_output=True, text=True, timeout=120)


def production(**env: str) -> dict[str, str]:
    return {"DJANGO_SETTINGS_MODULE": "config.settings.production", **SECRETS, **env}


@pytest.mark.parametrize("missing", sorted(SECRETS))
def test_production_refuses_to_start_without_each_required_setting_and_starts_nothing(tmp_path, missing):
    env = production()
    del env[missing]

    result = run(["-c", "import django; django.setup()"], env, tmp_path)

    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert f"{missing} is not set: set it to " in result.stderr
    assert not (tmp_path / "var").exists()  # no embedded Postgres or Redis was started


def test_production_refuses_a_short_identity_secret(tmp_path):
    env = production(WIDGET_IDENTITY_SECRET="x" * 31)
    result = run(["-c", "import django; django.setup()"], env, tmp_path)

    assert result.returncode != 0
    assert "WIDGET_IDENTITY_SECRET is shorter than 32 characters" in result.stderr


@pytest.mark.parametrize(
    ("jwt_secret", "problem"),
    [
        (SECRETS["WIDGET_IDENTITY_SECRET"], "WIDGET_JWT_SECRET equals WIDGET_IDENTITY_SECRET"),
        ("y" * 31, "WIDGET_JWT_SECRET is shorter than 32 characters"),
    ],
    ids=["same-as-user-hash-key", "short"],
)
def test_production_refuses_a_jwt_secret_that_is_the_user_hash_key_or_short(tmp_path, jwt_secret, problem):
    result = run(["-c", "import django; django.setup()"], production(WIDGET_JWT_SECRET=jwt_secret), tmp_path)

    assert result.returncode != 0
    assert problem in result.stderr


JWT_SETTINGS = """
import json, django
django.setup()
from django.conf import settings
print(json.dumps([settings.WIDGET_JWT_SECRET, settings.WIDGET_JWT_AUDIENCE]))
"""


@pytest.mark.parametrize(("env", "expected"), [({}, ""), ({"WIDGET_JWT_SECRET": "z" * 40}, "z" * 40)],
                         ids=["unset-is-off", "set"])
def test_production_jwt_sessions_are_off_unless_a_jwt_secret_is_set(tmp_path, env, expected):
    result = run(["-c", JWT_SETTINGS], production(**env), tmp_path)

    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.splitlines()[-1]) == [expected, "kefu"]


@pytest.mark.parametrize("name", sorted(DEV_DEFAULTS))
def test_production_refuses_the_published_development_defaults(tmp_path, name):
    result = run(["-c", "import django; django.setup()"], production(**{name: DEV_DEFAULTS[name]}), tmp_path)

    assert result.returncode != 0
    assert f"{name} is the published development default" in result.stderr


def test_production_names_every_problem_at_once(tmp_path):
    result = run(["-c", "import django; django.setup()"],
                 {"DJANGO_SETTINGS_MODULE": "config.settings.production"}, tmp_path)

    assert result.returncode != 0
    problems = [line for line in result.stderr.splitlines() if line.startswith("  - ")]
    assert len(problems) == len(SECRETS)


def test_production_refuses_secret_keys_that_are_not_fernet_keys_and_says_how_to_make_one(tmp_path):
    keys = f"{SECRETS['KEFU_SECRET_KEYS']},not-a-key"
    result = run(["-c", "import django; django.setup()"], production(KEFU_SECRET_KEYS=keys), tmp_path)

    assert result.returncode != 0
    assert "KEFU_SECRET_KEYS holds something that is not a Fernet key" in result.stderr
    assert "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())" in result.stderr


@pytest.mark.parametrize(
    "code",
    ["import config.asgi", "from config.celery import app; print(app.conf.broker_url)"],
    ids=["asgi", "celery"],
)
def test_asgi_and_celery_without_a_settings_module_are_production_and_refuse_dev_defaults(tmp_path, code):
    result = run(["-c", code], {}, tmp_path)

    assert result.returncode != 0
    assert "config.settings.production refuses to start" in result.stderr
    assert "DJANGO_SECRET_KEY is not set" in result.stderr
    assert not (tmp_path / "var").exists()


ROUTES = """
import json, django
django.setup()
from django.conf import settings
from django.urls import Resolver404, resolve
from config.routing import websocket_urlpatterns
try:
    resolve("/")
    shop = True
except Resolver404:
    shop = False
print(json.dumps({"shop": shop, "ws": sorted(str(p.pattern) for p in websocket_urlpatterns),
                  "demo_pages": settings.KEFU_DEMO_PAGES, "debug": settings.DEBUG}))
"""


def test_production_routes_neither_the_demo_shop_nor_the_echo_socket(tmp_path):
    result = run(["-c", ROUTES], production(), tmp_path)

    assert result.returncode == 0, result.stderr
    routes = json.loads(result.stdout.splitlines()[-1])
    assert (routes["shop"], routes["demo_pages"], routes["debug"]) == (False, False, False)
    assert "ws/echo/" not in routes["ws"]
    assert "ws/chat/" in routes["ws"]


def test_development_routes_the_demo_shop_and_the_echo_socket(tmp_path):
    env = {"DJANGO_SETTINGS_MODULE": "config.settings.base", "DATABASE_URL": SECRETS["DATABASE_URL"],
           "REDIS_URL": SECRETS["REDIS_URL"]}
    result = run(["-c", ROUTES], env, tmp_path)

    assert result.returncode == 0, result.stderr
    routes = json.loads(result.stdout.splitlines()[-1])
    assert (routes["shop"], routes["demo_pages"]) == (True, True)
    assert "ws/echo/" in routes["ws"]


LOG_LINE = """
import django, logging
django.setup()
from apps.core.logging import log_context
with log_context(conversation_id="c-42", request_id="r-7"):
    logging.getLogger("kefu.test").warning("answer started")
"""


def test_production_logs_one_json_object_per_line_with_the_context_ids(tmp_path):
    result = run(["-c", LOG_LINE], production(), tmp_path)

    assert result.returncode == 0, result.stderr
    line = json.loads(result.stderr.strip().splitlines()[-1])
    fields = ("level", "logger", "message", "conversation_id", "request_id", "service")
    assert {k: line[k] for k in fields} == {
        "level": "WARNING", "logger": "kefu.test", "message": "answer started",
        "conversation_id": "c-42", "request_id": "r-7", "service": "kefu",
    }


@pytest.mark.django_db
def test_demo_agent_is_staff_but_not_a_superuser(settings):
    call_command("demo_setup")

    agent = get_user_model().objects.get(username=settings.DEMO_AGENT_EMAIL)
    assert (agent.is_staff, agent.is_superuser) == (True, False)
    assert agent.has_perm("customers.view_customer") is True
    assert agent.has_perm("auth.change_user") is False


@pytest.mark.django_db
def test_demo_setup_keeps_a_changed_password_and_removes_an_old_superuser_flag(client, settings):
    call_command("demo_setup")
    agent = get_user_model().objects.get(username=settings.DEMO_AGENT_EMAIL)
    agent.set_password("changed-by-the-operator")
    agent.is_superuser = True  # what earlier versions of demo_setup made it
    agent.save()

    call_command("demo_setup")

    agent.refresh_from_db()
    assert agent.is_superuser is False
    assert client.login(username="agent@example.com", password="kefu-demo") is False
    assert client.login(username="agent@example.com", password="changed-by-the-operator") is True


def samples(text: str) -> dict[tuple[str, tuple], float]:
    from prometheus_client.parser import text_string_to_metric_families

    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


@pytest.mark.django_db
def test_metrics_are_refused_to_the_public(client, settings):
    settings.METRICS_TOKEN = "scrape-token-of-the-monitoring-team"

    anonymous = client.get("/metrics")
    wrong = client.get("/metrics", HTTP_AUTHORIZATION="Bearer guess")

    assert (anonymous.status_code, wrong.status_code) == (403, 403)
    assert anonymous.json()["error"] == "forbidden"


@pytest.mark.django_db
def test_metrics_show_counters_and_the_queue_depth_read_from_redis(client, settings, redis_client):
    from apps.core import metrics

    settings.METRICS_TOKEN = "scrape-token-of-the-monitoring-team"
    queue = f"{settings.KEFU_REDIS_PREFIX}-metrics-probe"
    settings.METRICS_CELERY_QUEUES = [queue]
    redis_client.rpush(queue, "task-1", "task-2")
    auth = {"HTTP_AUTHORIZATION": "Bearer scrape-token-of-the-monitoring-team"}
    before = samples(client.get("/metrics", **auth).content.decode())

    metrics.acks_total.inc()
    metrics.answers_total.labels(outcome="stopped").inc(2)
    response = client.get("/metrics", **auth)

    assert response.status_code == 200
    after = samples(response.content.decode())
    assert after[("kefu_celery_queue_depth", (("queue", queue),))] == 2
    assert after[("kefu_acks_total", ())] - before[("kefu_acks_total", ())] == 1
    stopped = ("kefu_answers_total", (("outcome", "stopped"),))
    assert after[stopped] - before.get(stopped, 0) == 2
    for name in ("kefu_sockets_open", "kefu_ack_seconds_count", "kefu_answer_first_token_seconds_count"):
        assert (name, ()) in after


@pytest.mark.django_db
def test_staff_may_read_the_metrics(client):
    staff = get_user_model().objects.create_user("ops", password="pw", is_staff=True)
    client.force_login(staff)

    assert client.get("/metrics").status_code == 200


def test_each_request_gets_an_id_in_the_response_header(client):
    given = client.get("/widget/kefu-widget.js", HTTP_X_REQUEST_ID="lb-4f2a-0001")
    unsafe = client.get("/widget/kefu-widget.js", HTTP_X_REQUEST_ID="<script>")

    assert given["X-Request-ID"] == "lb-4f2a-0001"
    assert len(unsafe["X-Request-ID"]) == 32 and unsafe["X-Request-ID"] != "<script>"


@pytest.mark.parametrize("split", [False, True])
def test_split_queues_send_each_area_to_its_own_worker_pool(settings, split):
    from config.celery import app, celery_queues

    settings.KEFU_CELERY_SPLIT_QUEUES = split
    default = settings.CELERY_TASK_DEFAULT_QUEUE
    names = ["connectors.tool_call_run", "apps.knowledge.tasks.document_index",
             "apps.webhooks.tasks.webhook_event_process", "apps.other.tasks.anything"]

    queues = [app.amqp.router.route({}, name)["queue"].name for name in names]

    if split:
        assert queues == [f"{default}.tools", f"{default}.ingestion", f"{default}.webhooks", default]
        assert celery_queues() == [default, *(f"{default}.{a}" for a in ("answers", "ingestion", "tools",
                                                                         "webhooks"))]
    else:
        assert queues == [default] * 4
        assert celery_queues() == [default]


@pytest.mark.django_db(transaction=True)
async def test_request_logs_carry_the_request_id_even_after_the_view_returned(async_client, settings):
    import logging

    from asgiref.sync import sync_to_async
    from django.db import connections

    from apps.core.logging import ContextFilter

    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append
    handler.addFilter(ContextFilter())
    logging.getLogger("django.request").addHandler(handler)
    settings.RATELIMIT_SESSION_IP = "1/minute"
    ip = f"198.19.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250 + 1}"
    try:
        for request_id in ("lb-req-1", "lb-req-2"):
            await async_client.post("/api/widget/session", data="", content_type="application/json",
                                    REMOTE_ADDR=ip, headers={"X-Request-ID": request_id})
    finally:
        logging.getLogger("django.request").removeHandler(handler)
        # The view ran on asgiref's thread: close its connection there, or the test database
        # cannot be dropped.
        await sync_to_async(connections.close_all)()

    assert [(r.getMessage(), r.request_id) for r in records] == [
        ("Too Many Requests: /api/widget/session", "lb-req-2")
    ]
