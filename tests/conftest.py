"""Shared fixtures: real Postgres (a per-run test database), real Redis (a per-run key
prefix), a real Celery worker, and real uvicorn processes on free loopback ports (Daphne for
tests/realtime/test_daphne.py only)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis
from django.conf import settings
from django.db import connection

from apps.devstack.embedded.ports import free_port
from apps.knowledge.demo import demo_knowledge_base_load

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session", autouse=True)
def _clean_redis_prefix() -> Iterator[None]:
    """Remove this run's Redis keys afterwards, so runs leave nothing behind."""
    yield
    client = redis.Redis.from_url(settings.REDIS_URL)
    for key in client.scan_iter(f"{settings.KEFU_REDIS_PREFIX}*", count=1000):
        client.delete(key)


@pytest.fixture(scope="session")
def demo_kb(django_db_setup, django_db_blocker) -> str:
    """The demo help center, loaded once per run (tests roll back around it; transactional
    tests run after the others and flush it)."""
    with django_db_blocker.unblock():
        return demo_knowledge_base_load().slug


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


def test_database_url() -> str:
    """A URL of the test database, for server processes the tests start."""
    s = connection.settings_dict
    return f"postgres://{s['USER']}@{s['HOST']}:{s['PORT']}/{s['NAME']}"


def service_env(**extra: str) -> dict[str, str]:
    """Environment for a child process that must use this run's database and Redis."""
    env = dict(os.environ)
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings.test",
        DATABASE_URL=test_database_url(),
        KEFU_TEST_DB_NAME=connection.settings_dict["NAME"],
        REDIS_URL=settings.REDIS_URL,
        KEFU_REDIS_PREFIX=settings.KEFU_REDIS_PREFIX,
        CELERY_TASK_DEFAULT_QUEUE=settings.CELERY_TASK_DEFAULT_QUEUE,
        PYTHONUNBUFFERED="1",
    )
    env.update(extra)
    return env


class ServerProcess:
    def __init__(self, proc: subprocess.Popen, port: int, log: Path) -> None:
        self.proc, self.port, self.log = proc, port, log

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()


def wait_for_port(port: int, proc: subprocess.Popen, log: Path, timeout: float = 30) -> None:
    import socket

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError(f"server did not listen on {port} within {timeout}s:\n{log.read_text()[-3000:]}")


@pytest.fixture
def web_server(transactional_db, tmp_path) -> Iterator[Callable[..., ServerProcess]]:
    """Start real uvicorn processes (what `make run` serves with) against the test database:
    `web_server(**env)` -> server. `workers` > 1 runs uvicorn's supervisor with that many."""
    started: list[ServerProcess] = []

    def start(port: int | None = None, workers: int = 1, **env: str) -> ServerProcess:
        port = port or free_port()
        log = tmp_path / f"uvicorn-{port}-{len(started)}.log"
        proc = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "config.asgi:application", "--host", "127.0.0.1",
             "--port", str(port), "--workers", str(workers), "--ws", "websockets-sansio", "--lifespan", "on",
             "--no-access-log", "--timeout-graceful-shutdown", "5",
             # As the Procfile: frames over 1 MiB close with 1009, X-Forwarded-For from TRUSTED_PROXIES only.
             "--ws-max-size", "1048576", "--proxy-headers",
             "--forwarded-allow-ips", env.get("TRUSTED_PROXIES", "")],
            cwd=REPO, env=service_env(**env), stdout=log.open("w"), stderr=subprocess.STDOUT,
        )
        server = ServerProcess(proc, port, log)
        started.append(server)
        wait_for_port(port, proc, log)
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
        proc = subprocess.Popen(
            [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port),
             "--websocket-max-message-size", "1048576", "--websocket-max-frame-size", "1048576",
             "config.asgi:application"],
            cwd=REPO, env=service_env(**env), stdout=log.open("w"), stderr=subprocess.STDOUT,
        )
        server = ServerProcess(proc, port, log)
        started.append(server)
        wait_for_port(port, proc, log)
        return server

    yield start
    for server in started:
        server.stop()
