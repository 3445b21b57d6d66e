"""Embedded PostgreSQL (with pgvector) and Redis for development machines with neither.

`ensure_services()` is called by the development entry points (apps/devstack/environment.py),
never by settings: it starts what is not already running under `KEFU_VAR_DIR`, registers this
process as a client, and stops each server when its last client exits. The caller exports the
URLs it returns, so settings and child processes read them from the environment.
"""

from __future__ import annotations

import atexit
from pathlib import Path

from .errors import EmbeddedServiceError
from .leases import Lease
from .postgres import EmbeddedPostgres
from .redis import EmbeddedRedis

__all__ = ["EmbeddedPostgres", "EmbeddedRedis", "EmbeddedServiceError", "ensure_services"]

_leases: list[Lease] = []


def ensure_services(var_dir: Path, *, database: bool, redis: bool) -> dict[str, str]:
    """Start the embedded services that are asked for; return their URLs by env variable."""
    urls: dict[str, str] = {}
    if database:
        pg = EmbeddedPostgres(var_dir / "postgres", run_dir=var_dir / "run")
        urls["DATABASE_URL"] = _lease(pg, "postgres", var_dir).url()
    if redis:
        rs = EmbeddedRedis(var_dir / "redis", run_dir=var_dir / "run")
        urls["REDIS_URL"] = _lease(rs, "redis", var_dir).url()
    return urls


def _lease(service, name: str, var_dir: Path):
    lease = Lease(var_dir / "run" / f"{name}.clients", service)
    lease.acquire()
    if not _leases:
        atexit.register(release_all)
    _leases.append(lease)
    return service


def release_all() -> None:
    """Release this process's leases; the last client of a server stops it."""
    while _leases:
        _leases.pop().release()
