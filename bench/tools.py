"""Tool calls end to end: dispatch -> `tool` events at the customer's socket, beside a bare
Celery round trip, and throughput of concurrent calls against a slow system.

    .venv/bin/python bench/tools.py [--samples 100] [--concurrent 50] [--latency-ms 200] [--worker-threads 8]
                                    [--out PATH]

A throw-away database and Redis prefix; real processes on loopback: Daphne (the customer's
socket, `resume`d on the conversation), a Celery worker (threads pool), the demo CRM/ERP.
- latency: `order_status` dispatched by the toolbox service (a ToolCall row + `queued` event
  on commit + the task), one at a time; measured from just before the dispatch to the `queued`
  event (emitted by the dispatcher) and to the `running` event (the worker's first) arriving at
  the websocket; beside it, a bare Celery no-op task: apply_async -> result in the same run.
- throughput: the demo system answers after --latency-ms; --concurrent calls through the
  toolbox at once (each waits for its outcome as an answer does); wall time and calls/s.
Prints a table and writes bench/results/tools.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import sys
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from _harness import (  # noqa: E402
    celery_worker_start,
    chat_connect,
    child_env,
    daphne_start,
    django_setup_scratch,
    process_start,
    process_stop,
    scratch_teardown,
)


def percentile(values: list[float], q: float) -> float:
    """Nearest rank, q in [0, 1] (bench/webhooks.py's rule: these figures compare with earlier runs)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, int(round(q * len(ordered))) - 1))]


def demo_crm(env: dict[str, str], log: Path, token: str) -> tuple[object, str]:
    from apps.devstack.embedded.ports import free_port

    port = free_port()
    crm_env = {**env, "DEMO_CRM_HOST": "127.0.0.1", "DEMO_CRM_PORT": str(port), "DEMO_CRM_TOKEN": token}
    proc = process_start([sys.executable, "-m", "apps.demo_crm"], child_env(crm_env), log, port=port)
    return proc, f"http://127.0.0.1:{port}"


def stats(values: list[float]) -> dict[str, float]:
    return {
        "p50_ms": round(percentile(values, 0.5) * 1000, 1),
        "p95_ms": round(percentile(values, 0.95) * 1000, 1),
        "mean_ms": round(statistics.mean(values) * 1000, 1),
        "n": len(values),
    }


async def measure(args, ws_url: str, crm_url: str) -> dict:
    import httpx
    from asgiref.sync import sync_to_async

    from apps.connectors.demo import demo_connectors_setup
    from apps.connectors.models import Tool
    from apps.connectors.services import tool_call_request
    from apps.connectors.tasks import noop_task
    from apps.connectors.toolbox import toolbox_for
    from apps.conversations.models import Conversation, ConversationEvent
    from apps.customers.services import customer_session_create, user_hash_for

    await sync_to_async(demo_connectors_setup)(base_url=crm_url)
    session = await sync_to_async(customer_session_create)(
        user_id="demo-customer-1",
        user_hash=user_hash_for(user_id="demo-customer-1"),
        name="Ada Lovelace",
        email="ada@example.com",
    )
    conversation = await Conversation.objects.acreate(customer_id=session.customer.pk)
    tool = await Tool.objects.select_related("connector").aget(name="order_status")
    ws, _ = await chat_connect(ws_url, session.token)
    await ws.send(json.dumps({"type": "resume", "conversation_id": str(conversation.pk), "last_seq": 0}))
    while json.loads(await ws.recv())["type"] != "resumed":
        pass

    async def until(call_id: str, status: str) -> float:
        while True:
            event = json.loads(await ws.recv())
            if event["type"] == "tool" and event["call_id"] == call_id and event["status"] == status:
                return time.perf_counter()

    def dispatch():
        return tool_call_request(
            conversation_id=conversation.pk, turn_id=None, tool=tool, arguments={"order_number": "PP-1001"}
        )

    queued, running, noop, dispatched = [], [], [], []
    walls: dict[str, tuple[float, float]] = {}  # call id -> (wall clock at dispatch, at the running event)
    for i in range(args.samples + 5):  # the first 5 warm up imports and connections
        wall0, t0 = time.time(), time.perf_counter()
        call = await sync_to_async(dispatch)()
        t_dispatched = time.perf_counter()
        t_queued = await until(str(call.id), "queued")
        t_running = await until(str(call.id), "running")
        await until(str(call.id), "succeeded")
        t1 = time.perf_counter()
        result = noop_task.apply_async()
        await asyncio.get_running_loop().run_in_executor(None, lambda r=result: r.get(timeout=30))
        t2 = time.perf_counter()
        if i >= 5:
            queued.append(t_queued - t0)
            running.append(t_running - t0)
            noop.append(t2 - t1)
            dispatched.append(t_dispatched - t0)
            walls[str(call.id)] = (wall0, wall0 + (t_running - t0))
    await ws.close()
    # Where the time to `running` goes, from the events' stored times (same clock).
    stored = {}
    async for event in ConversationEvent.objects.filter(conversation=conversation, type="tool"):
        stored[(event.payload["call_id"], event.payload["status"])] = event.created_at.timestamp()
    to_running_stored = [stored[(c, "running")] - w0 for c, (w0, _) in walls.items()]
    running_to_socket = [w1 - stored[(c, "running")] for c, (_, w1) in walls.items()]
    queued_to_running_stored = [stored[(c, "running")] - stored[(c, "queued")] for c in walls]

    httpx.post(f"{crm_url}/_admin/faults", json={"delay_ms": args.latency_ms}).raise_for_status()
    box = await sync_to_async(toolbox_for)(
        conversation_id=str(conversation.pk), customer_id=str(session.customer.pk), turn_id=""
    )
    started = time.perf_counter()
    outcomes = await asyncio.gather(
        *(box.call("order_status", {"order_number": "PP-1001"}) for _ in range(args.concurrent))
    )
    elapsed = time.perf_counter() - started
    ok = sum(o.status == "succeeded" for o in outcomes)
    return {
        "latency": {
            "dispatch_call_returns": stats(dispatched),
            "dispatch_to_queued_event": stats(queued),
            "dispatch_to_running_event": stats(running),
            "bare_celery_noop_round_trip": stats(noop),
            "split_queued_stored_to_running_stored": stats(queued_to_running_stored),
            "split_dispatch_to_running_stored": stats(to_running_stored),
            "split_running_stored_to_socket": stats(running_to_socket),
        },
        "running_vs_noop_p50": round(percentile(running, 0.5) / percentile(noop, 0.5), 2),
        "throughput": {
            "calls": args.concurrent,
            "succeeded": ok,
            "system_latency_ms": args.latency_ms,
            "worker_threads": args.worker_threads,
            "elapsed_s": round(elapsed, 3),
            "calls_per_s": round(args.concurrent / elapsed, 1),
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=100)
    parser.add_argument("--concurrent", type=int, default=50)
    parser.add_argument("--latency-ms", type=int, default=200)
    parser.add_argument("--worker-threads", type=int, default=8)
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "tools.json")
    args = parser.parse_args()
    db_name = f"kefu_bench_tools_{os.getpid()}"
    env = django_setup_scratch(db_name)
    env["DB_THREADS"] = "16"
    env["CHAT_HEARTBEAT_S"] = "3600"  # the bench socket sends no pings
    # The demo CRM listens on a free port, which the default allow-list (its usual port) does not name:
    # without this the worker's outbound policy refuses every call to it.
    env["OUTBOUND_ALLOWED_HOSTS"] = "127.0.0.1"
    from django.conf import settings

    tmp = Path(f"/tmp/kefu-bench-tools-{os.getpid()}")
    tmp.mkdir(parents=True, exist_ok=True)
    procs = []
    try:
        server, port = daphne_start(child_env(env), tmp / "daphne.log")
        procs.append(server)
        crm, crm_url = demo_crm(env, tmp / "crm.log", settings.DEMO_CRM_TOKEN)
        procs.append(crm)
        worker_options = ("--prefetch-multiplier", "1")
        procs.append(celery_worker_start(child_env(env), tmp / "celery.log", threads=args.worker_threads,
                                         extra=worker_options))
        settings.CELERY_TASK_DEFAULT_QUEUE = env["CELERY_TASK_DEFAULT_QUEUE"]
        from config.celery import app

        app.conf.task_default_queue = env["CELERY_TASK_DEFAULT_QUEUE"]
        time.sleep(5)  # the worker connects
        result = asyncio.run(measure(args, f"ws://127.0.0.1:{port}", crm_url))
    finally:
        for proc in procs:
            process_stop(proc, timeout=20)
        scratch_teardown(db_name, env)
    result["machine"] = {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "load_average_1m_after": round(os.getloadavg()[0], 2),
    }
    result["run_id"] = str(uuid.uuid4())
    lat = result["latency"]
    print(f"{'measure':<34}{'p50 ms':>10}{'p95 ms':>10}{'mean ms':>10}{'n':>6}")
    for name, row in lat.items():
        print(f"{name:<34}{row['p50_ms']:>10}{row['p95_ms']:>10}{row['mean_ms']:>10}{row['n']:>6}")
    print(f"running event p50 / bare no-op p50: {result['running_vs_noop_p50']}x")
    t = result["throughput"]
    print(
        f"{t['calls']} concurrent calls, system latency {t['system_latency_ms']} ms, "
        f"{t['worker_threads']} worker threads: {t['succeeded']} succeeded in {t['elapsed_s']} s "
        f"= {t['calls_per_s']} calls/s"
    )
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
