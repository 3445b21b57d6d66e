"""Test settings: the real Postgres and Redis, isolated per test run so that runs can share
the embedded servers (own test database, own Redis key prefix and Celery queue).

The test harness (tests/support/devstack.py) exports the services' URLs and this run's
KEFU_REDIS_PREFIX before these settings load, so the server processes tests start share them."""

import os

from .base import *  # noqa: F403
from .base import CHANNEL_LAYERS, DATABASES, env

DEBUG = False
# Without the harness's prefix (a process started by hand): one of its own, never the development one.
KEFU_REDIS_PREFIX = env.str("KEFU_REDIS_PREFIX", default=f"kefu-test-{os.getpid()}")
CHANNEL_LAYERS["default"]["CONFIG"]["prefix"] = f"{KEFU_REDIS_PREFIX}:asgi"
TEST_RUN_ID = KEFU_REDIS_PREFIX
# Test databases are dropped at the end of the run: no connection may outlive its use.
DATABASES["default"]["CONN_MAX_AGE"] = 0
DATABASES["default"]["TEST"] = {"NAME": env.str("KEFU_TEST_DB_NAME", default=f"test_kefu_{os.getpid()}")}
CELERY_TASK_DEFAULT_QUEUE = TEST_RUN_ID
# The many Daphne processes tests start load the model only if a test asks a question.
EMBEDDING_WARM_UP = env.bool("EMBEDDING_WARM_UP", default=False)
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
# Tests run the demo CRM/ERP and webhook receivers on random loopback ports; tests of the outbound
# policy itself narrow this with pytest-django's `settings` fixture.
OUTBOUND_ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
# Report facts refresh after each committed event batch, so a test reads current figures at once
# (tests of the batching raise it with the `settings` fixture and flush by hand).
REPORTS_REFRESH_DELAY_S = env.float("REPORTS_REFRESH_DELAY_S", default=0)
