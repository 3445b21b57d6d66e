"""The suite's fixtures, defined once: loaded by tests/conftest.py (`pytest_plugins`), after
pytest-django has set Django up (these modules import models). tests/support/devstack.py is the
other half, registered with `-p` in pyproject.toml because it must run before settings load.

Test modules import helpers from tests/support (never from another test module or conftest) and
request these fixtures by name; a directory's conftest.py keeps only what is its own."""

pytest_plugins = [
    "tests.support.servers",  # Redis keys, demo KB, Celery worker, uvicorn/Daphne, demo CRM
    "tests.support.people",  # customers, agents, the demo CRM's customer
    "tests.support.open_sockets",  # chat and agent sockets in this process, per-loop state
    "tests.support.crm",  # the demo connector against the demo CRM
    "tests.support.browser",  # Chromium and a fresh page
    "tests.support.flush",  # the end-of-test flush survives a listener still writing
]
