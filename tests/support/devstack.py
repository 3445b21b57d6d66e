"""pytest plugin (`-p tests.support.devstack` in pyproject.toml): the services before Django.

Settings only read the environment, so the embedded PostgreSQL/Redis are started (or shared with
a run already using them) here, in pytest's earliest hook, before pytest-django loads
config.settings.test: DATABASE_URL/REDIS_URL that are set (CI with its own servers) are used as
they are. This run's Redis key prefix goes into the environment too, so the server processes the
tests start (Daphne, uvicorn, Celery, `kefu_run`) inherit the URLs and the prefix.
"""

from __future__ import annotations

import os

import pytest

# What this plugin exported (empty when the environment had it all), for the tests of the harness.
exported: dict[str, str] = {}


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(early_config: pytest.Config) -> None:
    from apps.devstack.environment import environment_prepare

    # DJANGO_SETTINGS_MODULE stays pytest-django's to choose (pyproject.toml: config.settings.test).
    exported.update(environment_prepare(settings_module=None))
    if "KEFU_REDIS_PREFIX" not in os.environ:
        exported["KEFU_REDIS_PREFIX"] = os.environ["KEFU_REDIS_PREFIX"] = f"kefu-test-{os.getpid()}"
