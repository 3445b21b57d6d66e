"""End to end: `manage.py kefu_run` (what `make run` runs) starts the real stack, serves a
WebSocket through Daphne, reports healthy, and stops every process it started on Ctrl-C."""

import json
import signal
import socket
import subprocess
import sys
import time

import httpx
import psutil
import pytest
import websockets

from apps.devstack.embedded.ports import free_port
from tests.support.process import REPO, service_env


def wait_for_healthy(url: str, proc: subprocess.Popen, timeout: float = 90) -> dict:
    deadline = time.monotonic() + timeout
    body: dict = {}
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"kefu_run exited with {proc.returncode}"
        try:
            response = httpx.get(url, timeout=5)
            body = response.json()
            if response.status_code == 200:
                return body
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise AssertionError(f"/healthz never answered 200; last answer: {body}")


@pytest.mark.e2e
@pytest.mark.django_db(transaction=True)
async def test_kefu_run_serves_the_stack_and_ctrl_c_stops_everything(tmp_path):
    port = free_port()
    log = tmp_path / "kefu_run.log"
    proc = subprocess.Popen([sys.executable, "manage.py", "kefu_run"], cwd=REPO,
                            env=service_env(PORT=str(port), DJANGO_SETTINGS_MODULE="config.settings.test"),
                            stdout=log.open("w"), stderr=subprocess.STDOUT)
    try:
        health = wait_for_healthy(f"http://127.0.0.1:{port}/healthz", proc)
        children = psutil.Process(proc.pid).children(recursive=True)
        async with websockets.connect(f"ws://127.0.0.1:{port}/ws/echo/") as ws:
            await ws.send(json.dumps({"ping": 1}))
            echoed = json.loads(await ws.recv())

        proc.send_signal(signal.SIGINT)
        returncode = proc.wait(60)
    finally:
        if proc.poll() is None:
            proc.kill()

    assert health["checks"] == {"database": "ok", "redis": "ok", "channel_layer": "ok", "celery": "ok"}
    assert echoed == {"ping": 1}
    assert returncode == 0, log.read_text()[-3000:]
    assert len(children) >= 2  # daphne and the celery worker (plus its pool)
    assert [c.pid for c in children if c.is_running() and c.status() != psutil.STATUS_ZOMBIE] == []
    output = log.read_text()
    assert f"widget demo    http://127.0.0.1:{port}/" in output
    assert "demo login     agent@example.com / kefu-demo" in output


@pytest.mark.django_db(transaction=True)
def test_kefu_run_names_the_port_variable_when_the_port_is_taken():
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]

        result = subprocess.run([sys.executable, "manage.py", "kefu_run"], cwd=REPO,
                                env=service_env(PORT=str(port)), capture_output=True, text=True, timeout=60)

    assert result.returncode == 1
    assert f"Port {port} on 127.0.0.1 is already in use" in result.stderr
    assert f"PORT={port + 1} make run" in result.stderr
