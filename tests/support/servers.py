"""Fixtures for the processes and services tests run against: this run's Redis keys, the demo
knowledge base, a Celery worker, uvicorn (what `make run` and the Procfile serve with; Daphne
for tests/realtime/test_daphne.py only) and the demo CRM/ERP."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
import redis
from django.conf import settings

from apps.devstack.embedded.ports import free_port
from apps.knowledge.demo import demo_knowledge_base_load
from tests.support.process import (
    DemoCRMProcess,
    ServerProcess,
    daphne_argv,
    demo_crm_start,
    server_start,
    service_env,
    uvicorn_argv,
)


@pytest.fixture(scope="session", autouse=True)
def _clean_redis_prefix() -> Iterator[None]:
    """Remove this run's Redis keys afterwards, so runs leave nothing behind."""
    yield
    client = redis.Redis.from_url(settings.REDIS_URL)
    for key in client.scan_iter(f"{settings.KEFU_REDIS_PREFIX}*", count=1000):
        client.delete(key)


@pytest.fixture(autouse=True)
def _search_cache_empty() -> None:
    """Each test searches afresh: the demo help center's index version lasts the whole run, and
    a test may replace what a search calls (an embedder, the spelling)."""
    from apps.knowledge.search_cache import search_cache

    search_cache.clear()


@pytest.fixture(scope="session")
def demo_kb(django_db_setup, django_db_blocker) -> str:
    """The demo help center, loaded once per run (tests roll back around it; transactional
    tests run after the others and flush it)."""
    with django_db_blocker.unblock():
        return demo_knowledge_base_load().slug


@pytest.fixture(scope="module")
def demo_kb_zh(django_db_setup, django_db_blocker) -> Iterator[str]:
    """The Chinese demo help center, committed (the provider searches on its own connection) for
    one test module and removed after it, so no other module's knowledge-base counts see it."""
    from apps.knowledge.models import KnowledgeBase

    with django_db_blocker.unblock():
        slug = demo_knowledge_base_load(language="zh-hans").slug
    yield slug
    with django_db_blocker.unblock():
        KnowledgeBase.objects.filter(slug=slug).delete()


@pytest.fixture
def redis_client() -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(settings.REDIS_URL, decode_responses=True)
    yield client
    client.close()


@pytest.fixture
def celery_worker_live(transactional_db) -> Iterator[object]:
    """A real Celery worker (in a thread of this process) consuming this run's queue."""
    from celery.contrib.testing.worker import start_worker

    from config.celery import app

    with start_worker(app, pool="threads", concurrency=2, perform_ping_check=False,
                      queues=[settings.CELERY_TASK_DEFAULT_QUEUE], shutdown_timeout=30) as worker:
        yield worker


@pytest.fixture
def web_server(transactional_db, tmp_path) -> Iterator[Callable[..., ServerProcess]]:
    """Start real uvicorn processes (what `make run` serves with) against the test database:
    `web_server(**env)` -> server. `workers` > 1 runs uvicorn's supervisor with that many."""
    started: list[ServerProcess] = []

    def start(port: int | None = None, workers: int = 1, **env: str) -> ServerProcess:
        port = port or free_port()
        log = tmp_path / f"uvicorn-{port}-{len(started)}.log"
        argv = uvicorn_argv(port, workers=workers, trusted_proxies=env.get("TRUSTED_PROXIES", ""))
        server = server_start(argv, port=port, log=log, env=service_env(**env))
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def daphne_server(transactional_db, tmp_path) -> Iterator[Callable[..., ServerProcess]]:
    """Start real Daphne processes against the test database: `daphne_server()` -> server. Only
    tests/realtime/test_daphne.py uses it (why: its docstring); everything else runs on uvicorn."""
    started: list[ServerProcess] = []

    def start(port: int | None = None, **env: str) -> ServerProcess:
        port = port or free_port()
        log = tmp_path / f"daphne-{port}-{len(started)}.log"
        server = server_start(daphne_argv(port), port=port, log=log, env=service_env(**env))
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture(scope="session")
def demo_crm_process(tmp_path_factory) -> Iterator[DemoCRMProcess]:
    service = demo_crm_start(tmp_path_factory.mktemp("demo_crm") / "demo_crm.log")
    yield service
    service.proc.terminate()
    service.proc.wait(10)


@pytest.fixture
def demo_crm(demo_crm_process) -> DemoCRMProcess:
    """The demo CRM/ERP with its seed data and no faults."""
    demo_crm_process.reset()
    return demo_crm_process
