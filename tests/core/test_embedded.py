"""Start, reuse and stop of the embedded servers, each in a scratch data directory."""

import os
import socket
import subprocess
import sys

import psycopg
import pytest
import redis

from apps.devstack.embedded import EmbeddedPostgres, EmbeddedRedis, EmbeddedServiceError
from apps.devstack.embedded import postgres as embedded_postgres
from apps.devstack.embedded import redis as embedded_redis
from apps.devstack.embedded.leases import Lease


@pytest.fixture
def scratch_redis(tmp_path):
    server = EmbeddedRedis(tmp_path / "redis", run_dir=tmp_path / "run")
    yield server
    server.stop()


@pytest.fixture
def scratch_postgres(tmp_path):
    server = EmbeddedPostgres(tmp_path / "postgres", run_dir=tmp_path / "run")
    yield server
    server.stop()


def test_redis_starts_once_is_reused_and_stops(scratch_redis):
    assert scratch_redis.start() is True
    url = scratch_redis.url()
    redis.Redis.from_url(url).set("k", "v")

    assert scratch_redis.start() is False  # already running: reused, not restarted
    assert scratch_redis.url() == url
    assert redis.Redis.from_url(url).get("k") == b"v"

    scratch_redis.stop()
    assert scratch_redis.running_port() is None
    with pytest.raises(redis.ConnectionError):
        redis.Redis.from_url(url, socket_connect_timeout=1).ping()


def test_redis_keeps_its_data_across_a_restart(scratch_redis):
    scratch_redis.start()
    redis.Redis.from_url(scratch_redis.url()).set("kept", "yes")
    scratch_redis.stop()

    scratch_redis.start()

    assert redis.Redis.from_url(scratch_redis.url()).get("kept") == b"yes"


def test_redis_takes_another_port_when_its_preferred_one_is_busy(scratch_redis, monkeypatch):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        taken = busy.getsockname()[1]
        monkeypatch.setattr(embedded_redis, "PREFERRED_PORT", taken)

        scratch_redis.start()

        assert scratch_redis.running_port() not in (None, taken)
        assert redis.Redis.from_url(scratch_redis.url()).ping() is True


def test_redis_started_beside_another_stack_on_the_same_port_takes_another_and_stops_only_itself(
    scratch_redis, tmp_path, monkeypatch
):
    # Two stacks starting at once both find the preferred port free; the first one binds it.
    other = EmbeddedRedis(tmp_path / "other", run_dir=tmp_path / "run")
    other.start()
    try:
        taken = other.running_port()
        found = iter([taken])
        real_free_port = embedded_redis.free_port
        monkeypatch.setattr(embedded_redis, "free_port", lambda preferred=None: next(found, None)
                            or real_free_port(preferred))

        assert scratch_redis.start() is True

        port = scratch_redis.running_port()
        assert port not in (None, taken)
        info = redis.Redis.from_url(scratch_redis.url()).info("server")
        assert info["process_id"] == int(scratch_redis.pid_file.read_text())
        scratch_redis.stop()
        assert redis.Redis(host="127.0.0.1", port=taken).ping() is True  # the other stack's lives on
    finally:
        other.stop()


def test_postgres_starts_with_pgvector_is_reused_and_keeps_data(scratch_postgres):
    assert scratch_postgres.start() is True
    url = scratch_postgres.url()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
        conn.execute("CREATE TABLE kept (v vector(3))")
        conn.execute("INSERT INTO kept VALUES ('[1,2,3]')")

    assert scratch_postgres.start() is False
    scratch_postgres.stop()
    assert scratch_postgres.running_port() is None
    scratch_postgres.start()

    with psycopg.connect(scratch_postgres.url()) as conn:
        assert conn.execute("SELECT v::text FROM kept").fetchone() == ("[1,2,3]",)


def test_postgres_refuses_a_data_directory_of_another_major_version(tmp_path):
    data = tmp_path / "postgres"
    data.mkdir()
    (data / "PG_VERSION").write_text("15\n")
    (data / "base").mkdir()

    with pytest.raises(EmbeddedServiceError) as error:
        EmbeddedPostgres(data, run_dir=tmp_path / "run").start()

    assert "PostgreSQL 15 data directory" in str(error.value)
    assert "DATABASE_URL" in str(error.value)
    assert (data / "PG_VERSION").read_text() == "15\n"  # never deleted
    assert (data / "base").is_dir()


def test_postgres_starts_over_a_stale_pid_file_naming_another_process(scratch_postgres, caplog):
    scratch_postgres.start()
    scratch_postgres.stop()
    # After a crash, postmaster.pid may name a pid that now belongs to something else.
    pid_file = scratch_postgres.data_dir / "postmaster.pid"
    pid_file.write_text(f"{os.getpid()}\n{scratch_postgres.data_dir}\n0\n5432\n")
    os.chmod(pid_file, 0o600)

    with caplog.at_level("WARNING", logger=embedded_postgres.__name__):
        assert scratch_postgres.start() is True

    assert f"names pid {os.getpid()}, which is not a PostgreSQL server" in caplog.text
    with psycopg.connect(scratch_postgres.url()) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)


def test_last_lease_to_leave_stops_the_server(scratch_redis, tmp_path):
    lease_file = tmp_path / "run" / "redis.clients"
    lease = Lease(lease_file, scratch_redis)
    lease.acquire()
    # Another live client (a child process that keeps running) also holds a lease.
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        lease_file.write_text(f"[{os.getpid()}, {other.pid}]")

        lease.release()
        assert scratch_redis.running_port() is not None  # the other client still uses it

        other.kill()
        other.wait()
        lease.acquire()
        lease.release()
        assert scratch_redis.running_port() is None
    finally:
        other.kill()


def test_a_crashed_client_does_not_keep_the_server_alive(scratch_redis, tmp_path):
    lease_file = tmp_path / "run" / "redis.clients"
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    lease = Lease(lease_file, scratch_redis)
    lease.acquire()
    lease_file.write_text(f"[{os.getpid()}, {dead.pid}]")

    lease.release()

    assert scratch_redis.running_port() is None
