"""Run a development command with the embedded services: started if need be, shared if running.

    python -m apps.devstack manage <manage.py arguments>   e.g. `manage migrate`, `manage kefu_run`
    python -m apps.devstack run <program> [arguments]      e.g. `run python bench/ws_sessions.py`

DATABASE_URL/REDIS_URL that are set are used as they are. `manage` defaults DJANGO_SETTINGS_MODULE
to the development settings (manage.py's own default is production); `run` leaves it to the program
(pytest's is config.settings.test). The command runs as a child; this process holds the services'
leases until it exits, then the last client stops them.
"""

from __future__ import annotations

import signal
import subprocess
import sys

from .embedded import EmbeddedServiceError
from .environment import DEVELOPMENT_SETTINGS, REPO, environment_prepare

USAGE = __doc__.split("\n\n")[1]


def main(argv: list[str]) -> int:
    if len(argv) < 2 or argv[0] not in ("manage", "run"):
        print("usage:\n" + USAGE, file=sys.stderr)
        return 2
    manage = argv[0] == "manage"
    try:
        environment_prepare(settings_module=DEVELOPMENT_SETTINGS if manage else None)
    except EmbeddedServiceError as exc:
        print(f"devstack: {exc}", file=sys.stderr)
        return 1
    command = [sys.executable, str(REPO / "manage.py"), *argv[1:]] if manage else argv[1:]
    return _child_run(command)


def _child_run(command: list[str]) -> int:
    child = subprocess.Popen(command)
    # Ctrl-C reaches the child from the terminal; this process waits for it to finish stopping.
    signal.signal(signal.SIGINT, lambda *_: None)
    signal.signal(signal.SIGTERM, lambda signum, _: child.send_signal(signum))
    returncode = child.wait()
    return returncode if returncode >= 0 else 128 - returncode  # killed by a signal: as a shell says


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
