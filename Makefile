# Kefu: `make run` starts the whole platform, `make test` runs the whole test suite.
# Both create .venv and install requirements.txt first (`make test` and `make lint` also
# requirements-dev.txt); neither needs anything running.
# Settings only read the environment: the development stack (apps/devstack) starts or shares the
# embedded Postgres/Redis for what DATABASE_URL/REDIS_URL leave unset and exports their URLs.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.requirements-installed
DEV_STAMP := $(VENV)/.requirements-dev-installed

.PHONY: run manage test lint bench system-deps clean-var help

help:
	@echo "make run    start Kefu (embedded Postgres+pgvector and Redis unless DATABASE_URL/REDIS_URL are set)"
	@echo "make manage ARGS='migrate'   a manage.py command with the development settings and services"
	@echo "make test   run the whole test suite against real Postgres, Redis, Celery, uvicorn and Chromium"
	@echo "make lint   ruff and the import contracts (lint-imports)"
	@echo "make bench  run every bench/*.py at modest sizes (< 15 min on 2 cores), write docs/benchmarks.md"

$(STAMP): requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	touch $(STAMP)

$(DEV_STAMP): $(STAMP) requirements-dev.txt
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $(DEV_STAMP)

run: $(STAMP)
	$(PY) -m apps.devstack manage kefu_run

manage: $(STAMP)
	$(PY) -m apps.devstack manage $(ARGS)

# Headless Chromium for the browser tests (Debian's package; Playwright never downloads one), and
# a CJK font so the Chinese widget and console render as characters, not boxes, in screenshots.
BROWSER_PACKAGES := chromium fonts-wqy-microhei
system-deps:
	@if [ -x /usr/bin/chromium ] && [ -d /usr/share/fonts/truetype/wqy ]; then :; \
	elif [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(BROWSER_PACKAGES) >/dev/null; \
	else echo "The browser tests need Debian's $(BROWSER_PACKAGES): run 'sudo apt-get install $(BROWSER_PACKAGES)'" >&2; exit 1; fi

# The embedded services start in the plugin tests/support/devstack.py (pyproject.toml's addopts).
test: $(DEV_STAMP) system-deps
	$(PY) -m pytest

# ruff, then the layer contracts of pyproject.toml's [tool.importlinter] (README, architecture).
lint: $(DEV_STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports

# Every bench/*.py, each in its own process with a time limit; writes docs/benchmarks.md.
bench: $(DEV_STAMP)
	$(PY) -m apps.devstack run $(PY) bench/run_all.py
