"""One process harness: the commands that start Kefu's servers (as the Procfile does) and the demo
CRM, the environment a child process needs to use this run's database and Redis, and waiting for
a port. Used by the fixtures in tests/support and by bench/_harness.py."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from apps.devstack.embedded.ports import free_port

REPO = Path(__file__).resolve().parent.parent.parent
DEMO_CRM_TOKEN = "demo-crm-test-token"


def uvicorn_argv(port: int, *, app: str = "config.asgi:application", workers: int = 1,
                 trusted_proxies: str = "", extra: tuple[str, ...] = ()) -> list[str]:
    """uvicorn as the Procfile runs it: sans-I/O websockets, lifespan on, frames over 1 MiB close
    with 1009, no per-message deflate, X-Forwarded-For from TRUSTED_PROXIES only."""
    return [sys.executable, "-m", "uvicorn", app, "--host", "127.0.0.1", "--port", str(port),
            "--workers", str(workers), "--ws", "websockets-sansio", "--lifespan", "on",
            "--no-access-log", "--timeout-graceful-shutdown", "5",
            "--ws-max-size", "1048576", "--ws-per-message-deflate", "false",
            "--proxy-headers", "--forwarded-allow-ips", trusted_proxies, *extra]


def daphne_argv(port: int, *, app: str = "config.asgi:application", extra: tuple[str, ...] = ()) -> list[str]:
    return [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port),
            "--websocket-max-message-size", "1048576", "--websocket-max-frame-size", "1048576", *extra, app]


def wait_for_port(port: int, proc: subprocess.Popen, log: Path, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError(f"server did not listen on {port} within {timeout}s:\n{log.read_text()[-3000:]}")


def process_stop(proc: subprocess.Popen, timeout: float = 10) -> None:
    """SIGTERM, then SIGKILL if it has not exited within `timeout` seconds."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout)


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
        process_stop(self.proc)


def server_start(argv: list[str], *, port: int, log: Path, env: dict[str, str],
                 timeout: float = 30) -> ServerProcess:
    proc = subprocess.Popen(argv, cwd=REPO, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT)
    server = ServerProcess(proc, port, log)
    try:
        wait_for_port(port, proc, log, timeout)
    except RuntimeError:
        server.kill()
        raise
    return server


def test_database_url() -> str:
    """A URL of the test database, for server processes the tests start."""
    from django.db import connection

    s = connection.settings_dict
    return f"postgres://{s['USER']}@{s['HOST']}:{s['PORT']}/{s['NAME']}"


def service_env(**extra: str) -> dict[str, str]:
    """Environment for a child process that must use this run's database and Redis."""
    from django.conf import settings
    from django.db import connection

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


class DemoCRMProcess:
    """The demo CRM/ERP as a real process, with a small client for its operator endpoints
    (faults, write counts, shipping)."""

    def __init__(self, proc: subprocess.Popen, port: int, log: Path) -> None:
        self.proc, self.port, self.log = proc, port, log
        self.url = f"http://127.0.0.1:{port}"

    def admin(self, method: str, path: str, **kwargs) -> dict:
        response = httpx.request(method, f"{self.url}/_admin/{path}", timeout=10, **kwargs)
        response.raise_for_status()
        return response.json()

    def faults(self, **faults) -> None:
        self.admin("POST", "faults", json=faults)

    def writes(self, key: str | None = None) -> list[dict]:
        return self.admin("GET", "writes", params={"key": key} if key else {})["writes"]

    def reset(self) -> None:
        self.admin("POST", "reset")

    def get(self, path: str, token: str = DEMO_CRM_TOKEN) -> httpx.Response:
        return httpx.get(f"{self.url}{path}", headers={"Authorization": f"Bearer {token}"}, timeout=10)


def demo_crm_start(log: Path, token: str = DEMO_CRM_TOKEN, **env: str) -> DemoCRMProcess:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "apps.demo_crm"],
        cwd=REPO,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        env={
            **os.environ,
            "DEMO_CRM_HOST": "127.0.0.1",
            "DEMO_CRM_PORT": str(port),
            "DEMO_CRM_TOKEN": token,
            "PYTHONUNBUFFERED": "1",
            **env,
        },
    )
    wait_for_port(port, proc, log)
    return DemoCRMProcess(proc, port, log)
