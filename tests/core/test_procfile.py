"""The tests and benches start uvicorn as the Procfile does (tests/support/process.py
`uvicorn_argv`): the options that shape what a socket sees are the same in both."""

from __future__ import annotations

import shlex

from tests.support.process import REPO, uvicorn_argv

# Options whose value changes what a client or the server sees; the rest (host, port, workers,
# the graceful-shutdown time, log level) may differ between production and a test run.
SHAPING = ("--ws", "--ws-max-size", "--ws-per-message-deflate", "--lifespan")
SWITCHES = ("--proxy-headers", "--no-access-log")


def _options(argv: list[str]) -> dict[str, str | bool]:
    found: dict[str, str | bool] = {}
    for i, arg in enumerate(argv):
        if arg in SHAPING:
            found[arg] = argv[i + 1]
        elif arg in SWITCHES:
            found[arg] = True
    return found


def test_the_harness_starts_uvicorn_with_the_procfiles_socket_options() -> None:
    web = next(line for line in (REPO / "Procfile").read_text().splitlines() if line.startswith("web:"))
    procfile = _options(shlex.split(web.removeprefix("web:")))

    assert procfile == _options(uvicorn_argv(8000))
    assert procfile["--ws-per-message-deflate"] == "false"
    assert set(procfile) == set(SHAPING) | set(SWITCHES)
