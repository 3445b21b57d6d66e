"""The harness every bench script shares, so `python bench/<name>.py` works alone:

- `django_setup_scratch(db_name)`: the services of the development stack (embedded Postgres/Redis
  unless DATABASE_URL/REDIS_URL are set: `apps.devstack.environment.environment_prepare()`),
  Django on production settings, and a scratch database migrated for this run;
  `scratch_teardown` drops it and this run's Redis keys; `customer_tokens(n)`: customers to connect as.
- `child_env`: the environment of a Kefu process started against that database.
- `uvicorn_start` (as the Procfile runs it), `daphne_start`, `server_start` (either, by name),
  `celery_worker_start`, `process_start` (any other process), `process_stop`.
- the socket client: `ws_connect` (websockets with the benches' options, retried while a loaded
  server refuses), `chat_token` (POST /api/widget/session), `chat_connect` (/ws/chat/ and `auth`,
  up to `ready`), `recv_json`.
- `fake_llm_start`: the fake OpenAI-compatible server of tests/support/fake_llm.py, paced.
- `results_write`: bench/results/<name>.json (or --out), and `table_print`. (Each bench keeps its own
  percentile rule, so its figures stay comparable with its earlier results.)
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "bench" / "results"
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from tests.support.process import daphne_argv, process_stop, uvicorn_argv, wait_for_port  # noqa: E402

__all__ = [
    "REPO", "RESULTS", "celery_worker_start", "chat_connect", "chat_token", "child_env", "customer_tokens",
    "daphne_start", "django_setup_scratch", "fake_llm_start", "process_start", "process_stop", "recv_json",
    "results_write", "scratch_teardown", "server_start", "table_print", "uvicorn_start", "ws_connect",
]


def django_setup_scratch(db_name: str) -> dict[str, str]:
    """Load settings (the services from the environment, started here when unset) and point
    Django at a new, migrated database. Returns the variables child processes need."""
    from apps.devstack.environment import environment_prepare

    environment_prepare(settings_module="config.settings.base")
    os.environ["KEFU_REDIS_PREFIX"] = f"kefu-bench-{os.getpid()}"
    import django
    import psycopg
    from django.conf import settings

    django.setup()
    base = dict(settings.DATABASES["default"])
    admin = psycopg.connect(host=base["HOST"], port=base["PORT"], user=base["USER"],
                            password=base.get("PASSWORD") or None, dbname=base["NAME"], autocommit=True)
    admin.execute(f'CREATE DATABASE "{db_name}"')
    admin.close()
    settings.DATABASES["default"]["NAME"] = db_name
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    password = f":{base['PASSWORD']}" if base.get("PASSWORD") else ""
    return {
        "DATABASE_URL": f"postgres://{base['USER']}{password}@{base['HOST']}:{base['PORT']}/{db_name}",
        "REDIS_URL": settings.REDIS_URL,
        "KEFU_REDIS_PREFIX": settings.KEFU_REDIS_PREFIX,
        "CELERY_TASK_DEFAULT_QUEUE": settings.KEFU_REDIS_PREFIX,
        "_ADMIN_DB": base["NAME"],
    }


def scratch_teardown(db_name: str, env: dict[str, str]) -> None:
    import psycopg
    import redis
    from django.conf import settings
    from django.db import connections

    from apps.core.runtime import runtime

    runtime().stop_sync()  # what the process keeps (the reports' pending facts) is written first
    connections.close_all()
    base = settings.DATABASES["default"]
    admin = psycopg.connect(host=base["HOST"], port=base["PORT"], user=base["USER"],
                            password=base.get("PASSWORD") or None, dbname=env["_ADMIN_DB"], autocommit=True)
    admin.execute(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)')
    admin.close()
    client = redis.Redis.from_url(env["REDIS_URL"])
    for key in client.scan_iter(f"{env['KEFU_REDIS_PREFIX']}*", count=1000):
        client.delete(key)


def customer_tokens(n: int) -> list[str]:
    """`n` new customers in the scratch database and a widget token for each."""
    from apps.customers.models import Customer
    from apps.customers.tokens import widget_token_issue

    customers = Customer.objects.bulk_create([Customer() for _ in range(n)], batch_size=1000)
    return [widget_token_issue(customer_id=c.pk)[0] for c in customers]


def child_env(env: dict[str, str], **extra: str) -> dict[str, str]:
    """A Kefu process on the scratch database, as in production (no DEBUG bookkeeping), quiet, no
    embedding model loading in the background unless `extra` says otherwise."""
    return {**os.environ, **{k: v for k, v in env.items() if not k.startswith("_")},
            "DJANGO_SETTINGS_MODULE": "config.settings.base", "DJANGO_DEBUG": "false",
            "EMBEDDING_WARM_UP": "false", "LOG_LEVEL": "WARNING", "PYTHONUNBUFFERED": "1", **extra}


def process_start(argv: list[str], env: dict[str, str], log: Path, *,
                  port: int | None = None) -> subprocess.Popen:
    """`argv` in the repository with its output in `log`; with `port`, once it listens there."""
    proc = subprocess.Popen(argv, cwd=REPO, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT)
    if port is None:
        return proc
    try:
        wait_for_port(port, proc, log, timeout=90)
    except RuntimeError:
        process_stop(proc)
        raise
    return proc


def _start(argv: list[str], port: int, env: dict[str, str], log: Path) -> subprocess.Popen:
    return process_start(argv, env, log, port=port)


def uvicorn_start(env: dict[str, str], log: Path, *, app: str = "config.asgi:application",
                  extra: tuple[str, ...] = ()) -> tuple[subprocess.Popen, int]:
    """One uvicorn worker as the Procfile runs it (`env`: the full environment, see child_env)."""
    from apps.devstack.embedded.ports import free_port

    port = free_port()
    argv = uvicorn_argv(port, app=app, extra=("--log-level", "warning", *extra))
    if not app.startswith("config."):  # a bench's own bare app has no lifespan
        argv[argv.index("--lifespan") + 1] = "off"
    return _start(argv, port, env, log), port


def daphne_start(env: dict[str, str], log: Path, *,
                 app: str = "config.asgi:application") -> tuple[subprocess.Popen, int]:
    from apps.devstack.embedded.ports import free_port

    port = free_port()
    return _start(daphne_argv(port, app=app, extra=("-v", "0")), port, env, log), port


def server_start(server: str, env: dict[str, str], log: Path, *, app: str = "config.asgi:application",
                 extra: tuple[str, ...] = ()) -> tuple[subprocess.Popen, int]:
    """`server` ("uvicorn" or "daphne") serving `app`; `extra`: uvicorn's own options only."""
    if server == "daphne":
        return daphne_start(env, log, app=app)
    if server != "uvicorn":
        raise ValueError(f"server {server!r}: use 'uvicorn' or 'daphne'")
    return uvicorn_start(env, log, app=app, extra=extra)


def celery_worker_start(env: dict[str, str], log: Path, *, threads: int,
                        extra: tuple[str, ...] = ()) -> subprocess.Popen:
    """A Celery worker (threads pool) on the run's queue (`env`: the full environment)."""
    argv = [sys.executable, "-m", "celery", "-A", "config", "worker", "-Q", env["CELERY_TASK_DEFAULT_QUEUE"],
            "--pool", "threads", "-c", str(threads), *extra, "-l", "WARNING"]
    return process_start(argv, env, log)


def fake_llm_start(log: Path, *, first_token_s: float, token_interval_s: float, tokens: int,
                   embed_delay_s: float = 0.0) -> tuple[subprocess.Popen, str]:
    """tests/support/fake_llm.py as a process of its own (its threads must not share this one's
    GIL with the bench's clients). Returns the process and its base URL (…/v1)."""
    from apps.devstack.embedded.ports import free_port

    port = free_port()
    argv = [sys.executable, "-m", "tests.support.fake_llm", "--port", str(port),
            "--first-token", str(first_token_s), "--token-interval", str(token_interval_s),
            "--tokens", str(tokens), "--embed-delay", str(embed_delay_s)]
    return _start(argv, port, dict(os.environ), log), f"http://127.0.0.1:{port}/v1"


def results_write(name: str, results: dict, out: Path | str | None = None) -> Path:
    path = Path(out) if out else RESULTS / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2) + "\n")
    print(f"\nwrote {path.relative_to(REPO) if path.is_relative_to(REPO) else path}")
    return path


def table_print(header: list[str], rows: list[list[object]]) -> None:
    """A plain aligned table on stdout."""
    cells = [[str(c) for c in row] for row in [header, *rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    for n, row in enumerate(cells):
        print("  ".join(c.rjust(w) if n else c.ljust(w) for c, w in zip(row, widths, strict=True)))


# -- the socket client -----------------------------------------------------------------------


async def ws_connect(url: str, *, attempts: int = 1, **options: Any) -> Any:
    """A websockets client connection with the benches' defaults (no client pings: a bench's
    sockets stay quiet unless it says; no receive-queue bound: a slow reader is measured, not
    throttled). `attempts` > 1 retries a refused connection (a loaded server's full backlog)."""
    import websockets

    options = {"open_timeout": 60, "ping_interval": None, "max_queue": None, "max_size": 2**22, **options}
    for attempt in range(1, attempts + 1):
        try:
            return await websockets.connect(url, **options)
        except (OSError, TimeoutError, websockets.InvalidHandshake):
            if attempt == attempts:
                raise
            await asyncio.sleep(0.5)
    raise AssertionError("unreachable")


async def recv_json(ws: Any, timeout: float | None = None) -> dict[str, Any]:
    return json.loads(await asyncio.wait_for(ws.recv(), timeout))


async def chat_token(http_url: str) -> str:
    """A new anonymous customer's widget token (PROTOCOL.md §1, POST /api/widget/session)."""
    import httpx

    async with httpx.AsyncClient() as http:
        response = await http.post(f"{http_url}/api/widget/session", json={})
        response.raise_for_status()
        return response.json()["token"]


async def chat_connect(url: str, token: str, **options: Any) -> tuple[Any, dict[str, Any]]:
    """A customer's socket (PROTOCOL.md §2), authenticated: (the connection, its `ready`).
    `url`: the server's http(s):// or ws(s):// base, or the /ws/chat/ URL itself."""
    if url.startswith("http"):
        url = "ws" + url[len("http"):]
    if not url.rstrip("/").endswith("/ws/chat"):
        url = url.rstrip("/") + "/ws/chat/"
    ws = await ws_connect(url, **options)
    await ws.send(json.dumps({"type": "auth", "token": token}))
    while (frame := await recv_json(ws, 60))["type"] != "ready":
        pass
    return ws, frame
