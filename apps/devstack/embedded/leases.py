"""Client registry shared by every process using an embedded server.

The pids live in a JSON file guarded by an inter-process lock; dead pids are pruned, so a
crashed client never keeps a server alive, and the last live client to leave stops it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Protocol

import fasteners
import psutil


class Service(Protocol):
    def start(self) -> bool: ...
    def stop(self) -> None: ...


class Lease:
    def __init__(self, path: Path, service: Service) -> None:
        self.path = path
        self.service = service
        path.parent.mkdir(parents=True, exist_ok=True)
        self.lock = fasteners.InterProcessLock(str(path) + ".lock")

    def acquire(self) -> None:
        with self.lock:
            self.service.start()
            self._write(self._live() | {os.getpid()})

    def release(self) -> None:
        with self.lock:
            remaining = self._live() - {os.getpid()}
            self._write(remaining)
            if not remaining:
                self.service.stop()

    def clients(self) -> set[int]:
        with self.lock:
            return self._live()

    def _live(self) -> set[int]:
        try:
            pids = set(json.loads(self.path.read_text()))
        except (FileNotFoundError, ValueError):
            pids = set()
        return {pid for pid in pids if psutil.pid_exists(pid) and _not_zombie(pid)}

    def _write(self, pids: set[int]) -> None:
        self.path.write_text(json.dumps(sorted(pids)))


def _not_zombie(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False
