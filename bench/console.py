"""One queue change fanned out to N connected agent sockets, beside a bare group_send.

    .venv/bin/python bench/console.py [--agents 200] [--rounds 100]

A fresh Daphne process (throw-away database and Redis prefix) holds N console sockets
(/ws/agent/, session cookie + Origin), opened from a client process. Each round, the bench
process either publishes a queue change the way the event gate does (`queue_entry_publish`:
read the conversation's queue entry from Postgres, build it, group_send it to `agents`) or
sends a prebuilt entry with a bare Channels `group_send` to the same group; the client
process stamps when each socket receives it. Reported per kind: the time from the call until
ALL N sockets have it (p50/p99 over the rounds), and until the first one has it. Both kinds
go through the same sockets and the same consumer handler, alternating, so the difference is
what the queue path adds (its query and entry building). Clocks: CLOCK_MONOTONIC, shared by
processes on one machine.
Prints a table and writes bench/results/console.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
from _harness import (  # noqa: E402
    child_env,
    daphne_start,
    django_setup_scratch,
    process_stop,
    scratch_teardown,
    ws_connect,
)

CONNECT_CONCURRENCY = 50


# -- server and data (bench/_harness.py) --------------------------------------------------------


def start_daphne(env: dict[str, str], log: Path) -> tuple[subprocess.Popen, int]:
    # No assistant token pacing; idle sessions: no client heartbeat, so the server must not close them.
    return daphne_start(child_env(env, ASSISTANT_TOKEN_DELAY_S="0", CHAT_HEARTBEAT_S="3600"), log)


def _answer(worker, timeout: float = 900):
    """The client process's answer; fail instead of waiting forever if it died."""
    conn, process = worker
    deadline = time.monotonic() + timeout
    while not conn.poll(1):
        if not process.is_alive() or time.monotonic() > deadline:
            raise RuntimeError(f"client process {process.pid} died or hung (exit code {process.exitcode})")
    return conn.recv()


# -- the agents' client process ----------------------------------------------------------------


def client_main(conn, url: str, origin: str, cookie: str, count: int) -> None:
    asyncio.run(_client(conn, url, origin, cookie, count))


async def _client(conn, url: str, origin: str, cookie: str, count: int) -> None:
    gate = asyncio.Semaphore(CONNECT_CONCURRENCY)
    state = {"marker": None, "times": [], "done": asyncio.Event()}

    async def open_one():
        async with gate:
            ws = await ws_connect(url, origin=origin, additional_headers=[("Cookie", f"sessionid={cookie}")],
                                  max_size=None, max_queue=16)
            ready = json.loads(await ws.recv())
            assert ready["type"] == "agent_ready", ready
            return ws

    async def drain(ws):
        async for raw in ws:
            stamp = time.monotonic()
            event = json.loads(raw)
            if event["type"] == "conversation" and event["conversation"].get("bench") == state["marker"]:
                state["times"].append(stamp)
                if len(state["times"]) == count:
                    state["done"].set()

    sockets = list(await asyncio.gather(*(open_one() for _ in range(count))))
    drains = [asyncio.create_task(drain(ws)) for ws in sockets]
    conn.send("connected")
    loop = asyncio.get_running_loop()
    while True:
        command, arg = await loop.run_in_executor(None, conn.recv)
        if command == "arm":
            state.update(marker=arg, times=[], done=asyncio.Event())
            conn.send("armed")
        elif command == "collect":
            try:
                await asyncio.wait_for(state["done"].wait(), 30)
            except TimeoutError:
                pass
            conn.send(list(state["times"]))
        elif command == "ping":
            await asyncio.gather(*(ws.send(json.dumps({"type": "ping", "ts": 0})) for ws in sockets))
            conn.send(True)
        elif command == "close":
            for task in drains:
                task.cancel()
            await asyncio.gather(*(ws.close() for ws in sockets), return_exceptions=True)
            conn.send(True)
            return


def make_data() -> tuple[str, str]:
    """A staff agent's session cookie, and a conversation to publish."""
    from django.contrib.auth import get_user_model
    from django.test import Client

    from apps.conversations.models import Conversation
    from apps.conversations.services import message_create
    from apps.customers.models import Customer

    agent = get_user_model().objects.create_user(
        username="bench@example.com", password="x", first_name="Bench", last_name="Agent", is_staff=True
    )
    client = Client()
    client.force_login(agent)
    customer = Customer.objects.create(name="Ada Lovelace", email="ada@example.com")
    conversation = Conversation.objects.create(customer=customer)
    message_create(conversation=conversation, role="customer", text="Where is my order?")
    return client.cookies["sessionid"].value, str(conversation.pk)


def publish_queue(conversation_id: str, marker: str) -> None:
    """What the publisher does after a commit (build the entry, send it to `agents`), with a
    marker the clients can recognise."""
    from apps.console.queue import queue_entry_publish

    queue_entry_publish(conversation_id=conversation_id, bench=marker)


def publish_bare(entry: dict, marker: str) -> None:
    from asgiref.sync import async_to_sync
    from channels.layers import get_channel_layer

    message = {
        "type": "console.event",
        "event": {"type": "conversation", "conversation": {**entry, "bench": marker}},
    }
    async_to_sync(get_channel_layer().group_send)("agents", message)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, int(round(q * len(ordered))) - 1)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--agents", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=100, help="rounds per kind (default 100)")
    parser.add_argument("--out", default=str(REPO / "bench" / "results" / "console.json"))
    args = parser.parse_args()

    db_name = f"kefu_bench_console_{os.getpid()}"
    env = django_setup_scratch(db_name)
    log = Path(f"/tmp/kefu-bench-console-daphne-{os.getpid()}.log")
    proc = None
    try:
        cookie, conversation_id = make_data()
        # The bench process publishes through the same Redis prefix as the server.
        from django.conf import settings

        assert settings.KEFU_REDIS_PREFIX == env["KEFU_REDIS_PREFIX"]
        proc, port = start_daphne(env, log)
        parent, child = mp.Pipe()
        client = mp.get_context("fork").Process(
            target=client_main,
            args=(child, f"ws://127.0.0.1:{port}/ws/agent/", f"http://127.0.0.1:{port}", cookie, args.agents),
            daemon=True,
        )
        client.start()
        worker = (parent, client)
        assert _answer(worker) == "connected"

        from apps.console.queue import queue_entry_event

        entry = queue_entry_event(conversation_id=conversation_id)["conversation"]
        results: dict[str, dict[str, list[float]]] = {k: {"all": [], "first": []} for k in ("queue", "bare")}
        incomplete = {"queue": 0, "bare": 0}
        for i in range(args.rounds * 2 + 10):
            kind = "queue" if i % 2 == 0 else "bare"
            marker = f"{kind}-{i}"
            parent.send(("arm", marker))
            assert _answer(worker) == "armed"
            started = time.monotonic()
            if kind == "queue":
                publish_queue(conversation_id, marker)
            else:
                publish_bare(entry, marker)
            parent.send(("collect", None))
            times = _answer(worker)
            if i < 10:
                continue  # warm-up rounds
            if len(times) < args.agents:
                incomplete[kind] += 1
                continue
            results[kind]["all"].append((max(times) - started) * 1000)
            results[kind]["first"].append((min(times) - started) * 1000)
            if i % 40 == 0:  # keep the sockets from being closed as silent
                parent.send(("ping", None))
                _answer(worker)
        parent.send(("close", None))
        _answer(worker)
    finally:
        if proc is not None:
            process_stop(proc, timeout=15)
        scratch_teardown(db_name, env)

    summary = {}
    for kind, data in results.items():
        summary[kind] = {
            "rounds": len(data["all"]),
            "incomplete_rounds": incomplete[kind],
            "all_p50_ms": round(statistics.median(data["all"]), 2),
            "all_p99_ms": round(percentile(data["all"], 0.99), 2),
            "first_p50_ms": round(statistics.median(data["first"]), 2),
        }
    ratio_p50 = summary["queue"]["all_p50_ms"] / summary["bare"]["all_p50_ms"]
    ratio_p99 = summary["queue"]["all_p99_ms"] / summary["bare"]["all_p99_ms"]
    print(f"\n{args.agents} agent sockets on one Daphne process, {args.rounds} rounds per kind\n")
    print(f"{'':36}{'queue change':>14}{'bare group_send':>18}")
    for label, key in [
        ("all sockets have it, p50 (ms)", "all_p50_ms"),
        ("all sockets have it, p99 (ms)", "all_p99_ms"),
        ("first socket has it, p50 (ms)", "first_p50_ms"),
        ("incomplete rounds", "incomplete_rounds"),
    ]:
        print(f"{label:36}{summary['queue'][key]:>14}{summary['bare'][key]:>18}")
    print(f"\nqueue / bare: p50 {ratio_p50:.2f}x, p99 {ratio_p99:.2f}x (aim: at most 1.5x)")
    out = {
        "agents": args.agents,
        "rounds_per_kind": args.rounds,
        "queue_change": summary["queue"],
        "bare_group_send": summary["bare"],
        "ratio_p50": round(ratio_p50, 2),
        "ratio_p99": round(ratio_p99, 2),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "command": "bench/console.py " + " ".join(sys.argv[1:]),
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
