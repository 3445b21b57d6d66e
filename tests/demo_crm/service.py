"""The demo CRM/ERP as a real process on a free loopback port, and a small client for its
operator endpoints (faults, write counts, shipping)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from apps.devstack.embedded.ports import free_port
from tests.conftest import REPO, wait_for_port

TOKEN = "demo-crm-test-token"


class DemoCRMProcess:
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

    def get(self, path: str, token: str = TOKEN) -> httpx.Response:
        return httpx.get(f"{self.url}{path}", headers={"Authorization": f"Bearer {token}"}, timeout=10)


def demo_crm_start(log: Path, **env: str) -> DemoCRMProcess:
    import os

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
            "DEMO_CRM_TOKEN": TOKEN,
            "PYTHONUNBUFFERED": "1",
            **env,
        },
    )
    wait_for_port(port, proc, log)
    return DemoCRMProcess(proc, port, log)


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
