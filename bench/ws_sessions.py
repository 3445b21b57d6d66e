"""Idle customer sessions on ONE server process: Kefu's chat beside two bare baselines.

    .venv/bin/python bench/ws_sessions.py [--n 1000] [--samples 200] [--burst 500] [--clients 2]
                                          [--server uvicorn|daphne] [--no-other-server]

Targets, each on its own fresh server process (uvicorn with --ws websockets-sansio, as the Procfile
runs it, or Daphne: --server) against a throw-away database and Redis prefix:
- echo: the bare Channels echo consumer (/ws/echo/), no database;
- durable: bench/durable_app.py, a bare consumer that INSERTs one row and COMMITs (through
  apps.core.db.db_async) before it acks: the least a durable ack can cost;
- chat: Kefu's /ws/chat/ on --server, and again on the other server (Daphne vs uvicorn for
  Kefu's chat; skip with --no-other-server).
N sockets are opened from several client processes (at most 50 connecting at once: Daphne's
listen backlog is 50) and held. Measured:
- RSS per session: (server RSS with N sockets open - RSS before) / N
- connect rate: sockets per second until all are open (chat: connect + `auth` + `ready`)
- round trip p50/p99, one frame in flight at a time: echo = a frame and its echo; chat = a
  `message` and its `ack` (each answer is allowed to finish before the next message, so the
  number is the ack path itself, not a queue behind other customers' answers); durable = a
  `message` and its `ack`;
- burst: --burst connected customers send one frame each at the same moment (a shared wall-clock
  instant in every client process); ack p50/p99 counted from that instant;
- durable at the chat's pace: durable's round trip again, with a pause after each ack as long as
  the chat's answers took (p50, ack -> message_end). The chat's ack follows an answer; on these
  VMs a round trip after the machine did something else, or nothing, for a few ms costs more than
  one in a tight loop (wake-ups, cold caches), and this row shows by how much.
The chat server runs with CHAT_HEARTBEAT_S=3600: the sessions are idle (no client pings), and
the default 20 s heartbeat would close them as silent after 60 s. A real widget pings every
heartbeat, i.e. 5,000 sessions send 250 pings/s to the server at the default.
Prints a table and writes bench/results/ws_sessions.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
from _harness import (  # noqa: E402
    child_env,
    customer_tokens,
    django_setup_scratch,
    process_stop,
    scratch_teardown,
    server_start,
    ws_connect,
)

CONNECT_CONCURRENCY = 50


# -- client processes ------------------------------------------------------------------------


def client_main(conn, url: str, tokens: list[str] | None, count: int, kind: str) -> None:
    asyncio.run(_client(conn, url, tokens, count, kind))


async def _acked(ws) -> None:
    while True:
        event = json.loads(await ws.recv())
        if event["type"] == "ack":
            return
        if event["type"] == "error":
            raise RuntimeError(f"message refused: {event}")


async def _burst_one(ws, kind: str, start: float, i: int) -> float:
    """Send one frame at the shared instant `start` (wall clock); seconds until its answer."""
    await asyncio.sleep(max(0.0, start - time.time()))
    if kind == "echo":
        await ws.send(json.dumps({"n": i, "pad": "x" * 64}))
        await ws.recv()
    else:
        frame = {"type": "message", "client_msg_id": str(uuid.uuid4()), "text": f"burst {i}"}
        await ws.send(json.dumps(frame))
        await _acked(ws)
    return time.time() - start


async def _client(conn, url: str, tokens: list[str] | None, count: int, kind: str) -> None:
    sockets: list = []
    gate = asyncio.Semaphore(CONNECT_CONCURRENCY)
    drains: list[asyncio.Task] = []

    async def open_one(i: int):
        async with gate:
            ws = await ws_connect(url, attempts=5, max_size=2**20)
            if tokens is not None:
                await ws.send(json.dumps({"type": "auth", "token": tokens[i]}))
                ready = json.loads(await ws.recv())
                assert ready["type"] == "ready", ready
            return ws

    loop = asyncio.get_running_loop()
    while True:
        command, arg = await loop.run_in_executor(None, conn.recv)
        if command == "connect":
            started = time.perf_counter()
            sockets = list(await asyncio.gather(*(open_one(i) for i in range(count))))
            conn.send(time.perf_counter() - started)
        elif command == "rtt":
            count, pause_s = arg
            latencies, gaps = [], []
            for i in range(count):
                ws = sockets[i % len(sockets)]
                if kind == "echo":
                    payload = json.dumps({"n": i, "pad": "x" * 64})
                    t0 = time.perf_counter()
                    await ws.send(payload)
                    await ws.recv()
                    latencies.append(time.perf_counter() - t0)
                else:
                    cmid = str(uuid.uuid4())
                    t0 = time.perf_counter()
                    frame = {"type": "message", "client_msg_id": cmid, "text": f"bench {i}"}
                    await ws.send(json.dumps(frame))
                    await _acked(ws)
                    acked = time.perf_counter()
                    latencies.append(acked - t0)
                    if kind == "chat":
                        while json.loads(await ws.recv())["type"] != "message_end":  # let it finish
                            pass
                        gaps.append(time.perf_counter() - acked)
                if pause_s:
                    await asyncio.sleep(pause_s)
            conn.send((latencies, gaps))
        elif command == "burst":
            start, k = arg
            chosen = sockets[len(sockets) - k :]  # the last ones: not used by `rtt`, no conversation yet
            answers = await asyncio.gather(*(_burst_one(ws, kind, start, i) for i, ws in enumerate(chosen)))
            conn.send(list(answers))
        elif command == "close":
            for task in drains:
                task.cancel()
            await asyncio.gather(*(ws.close() for ws in sockets), return_exceptions=True)
            conn.send(True)
            return


# -- server and data ---------------------------------------------------------------------------


def setup_django(db_name: str) -> dict[str, str]:
    """The scratch database (bench/_harness.py), with the durable baseline's one table."""
    env = django_setup_scratch(db_name)
    from django.db import connection

    from bench.durable_app import CREATE_TABLE

    with connection.cursor() as cursor:
        cursor.execute(CREATE_TABLE)
    return env


def start_server(server: str, app: str, env: dict[str, str], log: Path) -> tuple[subprocess.Popen, int]:
    """`server` as the Procfile runs it (bench/_harness.py), one worker: the process whose RSS is measured."""
    server_env = child_env(
        env, ASSISTANT_TOKEN_DELAY_S="0",
        # Idle sessions: no client heartbeat, so the server must not close them as silent.
        CHAT_HEARTBEAT_S="3600",
        # No embedding model in the process (child_env's default): its ~10 s background load would
        # land in the middle of the RSS baseline. The bench database has no knowledge base to search.
    )
    return server_start(server, server_env, log, app=app)


def rss(pid: int) -> int:
    import psutil

    return psutil.Process(pid).memory_info().rss


APPS = {  # kind -> (ASGI app, path)
    "echo": ("config.asgi:application", "/ws/echo/"),
    "durable": ("bench.durable_app:application", "/ws/durable/"),
    "chat": ("config.asgi:application", "/ws/chat/"),
}


def measure(
    kind: str, server: str, env: dict[str, str], n: int, clients: int, samples: int, burst: int,
    tokens: list[str] | None, pace_s: float | None = None,
) -> dict:
    """One target's figures; with `pace_s`, its round trip again with that pause after each one."""
    log = Path(f"/tmp/kefu-bench-{server}-{os.getpid()}-{kind}.log")
    app, path = APPS[kind]
    proc, port = start_server(server, app, env, log)
    url = f"ws://127.0.0.1:{port}{path}"
    if kind != "chat":
        tokens = ["-"] * (n + clients) if kind == "durable" else None  # durable: `auth` is not checked
    try:
        # Warm the server up (imports, first connections) before the baseline RSS.
        warm = _spawn(url, tokens[-clients:] if tokens else None, 1, kind)
        _ask(warm, "connect")
        _ask(warm, "rtt", (5, 0))  # a socket may send 10 messages at once (rate limit)
        _ask(warm, "close")
        time.sleep(2)
        before = rss(proc.pid)
        share = [n // clients + (1 if i < n % clients else 0) for i in range(clients)]
        offset, workers = 0, []
        for count in share:
            workers.append(_spawn(url, tokens[offset : offset + count] if tokens else None, count, kind))
            offset += count
        started = time.perf_counter()
        for conn, _ in workers:
            conn.send(("connect", None))
        for worker in workers:
            _answer(worker)
        connect_s = time.perf_counter() - started
        time.sleep(3)
        after = rss(proc.pid)
        latencies, gaps = _ask(workers[0], "rtt", (samples, 0))
        paced = _ask(workers[0], "rtt", (samples, pace_s))[0] if pace_s else None
        # The burst: every client process sends at one shared instant, 1 s ahead.
        start = time.time() + 1.0
        burst_share = [burst // clients + (1 if i < burst % clients else 0) for i in range(clients)]
        for (conn, _), k in zip(workers, burst_share, strict=True):
            conn.send(("burst", (start, k)))
        bursts = sorted(x for worker in workers for x in _answer(worker))
        for worker in workers:
            _ask(worker, "close")
        latencies.sort()
        figures = {
            "server": server,
            "sessions": n,
            "rss_before_mib": round(before / 2**20, 1),
            "rss_after_mib": round(after / 2**20, 1),
            "rss_per_session_kib": round((after - before) / n / 1024, 1),
            "connect_per_s": round(n / connect_s, 1),
            "rtt_p50_ms": round(statistics.median(latencies) * 1000, 3),
            "rtt_p99_ms": round(latencies[int(len(latencies) * 0.99) - 1] * 1000, 3),
            "rtt_samples": len(latencies),
            "burst_ack_p50_ms": round(statistics.median(bursts) * 1000, 3),
            "burst_ack_p99_ms": round(bursts[int(len(bursts) * 0.99) - 1] * 1000, 3),
            "burst_ack_max_ms": round(bursts[-1] * 1000, 3),
            "burst": len(bursts),
        }
        if gaps:  # chat: how long the machine was busy with the answer before the next message
            figures["answer_after_ack_p50_ms"] = round(statistics.median(gaps) * 1000, 3)
        if paced:
            figures["rtt_paced_p50_ms"] = round(statistics.median(paced) * 1000, 3)
            figures["rtt_paced_pause_ms"] = round(pace_s * 1000, 3)
        return figures
    finally:
        process_stop(proc, timeout=15)


def _spawn(url, tokens, count, kind):
    parent, child = mp.Pipe()
    process = mp.get_context("fork").Process(
        target=client_main, args=(child, url, tokens, count, kind), daemon=True
    )
    process.start()
    return parent, process


def _ask(worker, command, arg=None):
    conn, process = worker
    conn.send((command, arg))
    answer = _answer(worker)
    if command == "close":
        process.join(30)
    return answer


def _answer(worker, timeout: float = 900):
    """The client process's answer; fail instead of waiting forever if it died."""
    conn, process = worker
    deadline = time.monotonic() + timeout
    while not conn.poll(1):
        if not process.is_alive() or time.monotonic() > deadline:
            raise RuntimeError(f"client process {process.pid} died or hung (exit code {process.exitcode})")
    return conn.recv()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=1000, help="sessions to hold (default 1000)")
    parser.add_argument("--samples", type=int, default=200, help="round trips measured (default 200)")
    parser.add_argument("--burst", type=int, default=500, help="customers sending at once (default 500)")
    parser.add_argument("--clients", type=int, default=2, help="client processes (default 2)")
    parser.add_argument("--server", choices=["uvicorn", "daphne"], default="uvicorn",
                        help="server for the baselines and Kefu's chat (default uvicorn, as the Procfile)")
    parser.add_argument("--no-other-server", action="store_true",
                        help="do not also run Kefu's chat on the other server")
    parser.add_argument("--out", default=str(REPO / "bench" / "results" / "ws_sessions.json"))
    args = parser.parse_args()

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if args.n + 500 > hard:
        sys.exit(f"--n {args.n} needs more open files than the hard limit {hard}; use several processes.")
    if args.burst > args.n:
        sys.exit("--burst must not exceed --n")
    other = "daphne" if args.server == "uvicorn" else "uvicorn"
    # Chat before durable: durable's round trip is measured again at the chat's pace.
    targets = [("echo", "echo", args.server), (f"chat_{args.server}", "chat", args.server),
               ("durable", "durable", args.server)]
    if not args.no_other_server:
        targets.append((f"chat_{other}", "chat", other))

    db_name = f"kefu_bench_{os.getpid()}"
    env = setup_django(db_name)
    try:
        tokens = customer_tokens(args.n + args.clients)
        results = {}
        for name, kind, server in targets:
            chat = results.get(f"chat_{args.server}")
            pace_s = chat["answer_after_ack_p50_ms"] / 1000 if kind == "durable" and chat else None
            results[name] = measure(kind, server, env, args.n, args.clients, args.samples, args.burst, tokens,
                                    pace_s=pace_s)
    finally:
        scratch_teardown(db_name, env)
    from django.conf import settings

    rows = [
        ("RSS per session (KiB)", "rss_per_session_kib"),
        ("connect rate (/s)", "connect_per_s"),
        ("round trip p50 (ms)", "rtt_p50_ms"),
        ("round trip p99 (ms)", "rtt_p99_ms"),
        (f"burst {args.burst} ack p50 (ms)", "burst_ack_p50_ms"),
        (f"burst {args.burst} ack p99 (ms)", "burst_ack_p99_ms"),
        ("RSS idle -> loaded (MiB)", None),
    ]
    names = ["echo", "durable", *(name for name in results if name.startswith("chat_"))]
    results = {name: results[name] for name in names}  # the baselines first, in the JSON too
    chat, durable = results[f"chat_{args.server}"], results["durable"]
    print(f"\n{args.n} idle sessions per server process ({platform.machine()}, {os.cpu_count()} cores); "
          f"baselines on {args.server}")
    print(f"{'':28}" + "".join(f"{name:>18}" for name in names) + f"{'chat / durable':>16}")
    for label, key in rows:
        if key is None:
            cells = [f"{results[k]['rss_before_mib']} -> {results[k]['rss_after_mib']}" for k in names]
            print(f"{label:28}" + "".join(f"{c:>18}" for c in cells))
            continue
        ratio = chat[key] / durable[key] if durable[key] else float("nan")
        print(f"{label:28}" + "".join(f"{results[name][key]:>18}" for name in names) + f"{ratio:>15.2f}x")
    print("round trip: echo = frame -> echo; durable and chat = message -> ack (chat: each answer "
          f"finishes before the next message); DATABASE_CONN_MAX_AGE="
          f"{settings.DATABASES['default']['CONN_MAX_AGE']}, DB_THREADS={settings.DB_THREADS}")
    paced = durable["rtt_paced_p50_ms"]
    print(f"durable at the chat's pace (a pause of {durable['rtt_paced_pause_ms']:.0f} ms, the chat's answer "
          f"p50, after each ack): round trip p50 {paced} ms; chat / that: {chat['rtt_p50_ms'] / paced:.2f}x")
    print(f"aims: chat ack p50 <= 2x durable: {chat['rtt_p50_ms'] / durable['rtt_p50_ms']:.2f}x; "
          f"burst ack p99 <= 3x durable's: {chat['burst_ack_p99_ms'] / durable['burst_ack_p99_ms']:.2f}x; "
          f"connect >= 0.5x durable's: {chat['connect_per_s'] / durable['connect_per_s']:.2f}x\n")
    results["meta"] = {"n": args.n, "samples": args.samples, "burst": args.burst, "clients": args.clients,
                       "server": args.server, "cpus": os.cpu_count(), "python": platform.python_version(),
                       "database_conn_max_age": settings.DATABASES["default"]["CONN_MAX_AGE"],
                       "db_threads": settings.DB_THREADS,
                       "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
