"""Webhook intake on ONE Daphne process, beside a bare Django view that stores the same row.

    .venv/bin/python bench/webhooks.py [--requests 2000] [--concurrency 16] [--clients 2] [--rounds 3]

A throw-away database and Redis prefix; each target runs on a fresh Daphne process on a free
loopback port, loaded by client processes (httpx, `--concurrency` requests in flight in all):
- bare: a plain Django view (this module, `bare_app`, same settings and middleware) that parses
  the JSON and stores the same WebhookEvent row with the ORM, then answers 202: no size check,
  no verification, no task.
- kefu, no worker: `POST /webhooks/bench-crm/` through the real intake (size check, Standard
  Webhooks verification, INSERT .. ON CONFLICT, a Celery task queued), nothing consuming the
  tasks: the intake alone against the bare view. The two run side by side, in `--rounds`
  alternating rounds (medians reported), so other load on the shared machine hits both alike;
  server CPU per request (psutil, the Daphne process) is reported beside the rate.
- kefu + worker: the same, with a real Celery worker (4 threads) processing the events at the
  same time on the same cores, and the latency probes below.
Load events name a customer nobody has (they end `unmatched`: one lookup each in the worker).
For 3 s before the load (at rest) and while the kefu load runs, a probe process posts one signed
`order.shipped` every 100 ms for one of 10 customers connected over `websockets` from another
process; intake-to-socket latency is the time from just before the probe's POST to its `update`
event arriving at the socket. Under load the events queue behind the load's in the one Celery
queue, so that latency is mostly the worker's backlog.
Prints a table and writes bench/results/webhooks.json.
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
import uuid
from datetime import UTC, datetime
from pathlib import Path

from django.urls import path
from django.views.decorators.csrf import csrf_exempt

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
# As bench._harness: Daphne imports this module as `bench.webhooks` to serve `bare_app`.
from bench._harness import (  # noqa: E402
    celery_worker_start,
    chat_connect,
    child_env,
    daphne_start,
    django_setup_scratch,
    process_stop,
    scratch_teardown,
)

SLUG = "bench-crm"
SECRET = "whsec_YmVuY2gtd2ViaG9vay1zZWNyZXQtb2YtMzItYnl0ZXM="
PROBE_CUSTOMERS = 10


# -- the bare view, served as its own ASGI app ---------------------------------------------------


@csrf_exempt
def bare_intake(request, connector: str):
    from django.http import JsonResponse

    from apps.webhooks.models import WebhookEvent, WebhookSource

    event = json.loads(request.body)
    WebhookEvent.objects.create(
        source=WebhookSource.objects.get(slug=connector),
        webhook_id=request.headers["webhook-id"],
        type=event["type"],
        data=event.get("data") or {},
    )
    return JsonResponse({"status": "accepted"}, status=202)


urlpatterns = [path("webhooks/<slug:connector>/", bare_intake)]


class _BareApp:
    """`daphne bench.webhooks:bare_app`: Django's ASGI handler with this module as URLconf."""

    handler = None

    async def __call__(self, scope, receive, send):
        if self.handler is None:
            import django
            from django.conf import settings

            django.setup(set_prefix=False)
            settings.ROOT_URLCONF = "bench.webhooks"
            from django.core.handlers.asgi import ASGIHandler

            type(self).handler = ASGIHandler()
        if scope["type"] == "lifespan":
            message = await receive()
            await send({"type": f"{message['type']}.complete"})
            return
        await self.handler(scope, receive, send)


bare_app = _BareApp()


# -- clients -----------------------------------------------------------------------------------


def signed(event: dict, msg_id: str | None = None) -> tuple[bytes, dict[str, str]]:
    from standardwebhooks.webhooks import Webhook

    body = json.dumps(event)
    msg_id = msg_id or f"msg_{uuid.uuid4().hex}"
    now = datetime.now(tz=UTC)
    return body.encode(), {
        "content-type": "application/json",
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": Webhook(SECRET).sign(msg_id, now, body),
    }


def load_main(conn, url: str, count: int, concurrency: int) -> None:
    conn.send(asyncio.run(_load(conn, url, count, concurrency)))


async def _load(conn, url: str, count: int, concurrency: int) -> dict:
    import httpx

    event = {
        "type": "order.shipped",
        "data": {"customer": {"external_id": "nobody"}, "order": {"id": "PP-1"}},
    }
    requests = [signed(event) for _ in range(count)]  # signed before the clock starts
    statuses: dict[int, int] = {}
    queue = iter(requests)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(limits=limits, timeout=60) as client:

        async def worker():
            for body, headers in queue:
                response = await client.post(url, content=body, headers=headers)
                statuses[response.status_code] = statuses.get(response.status_code, 0) + 1

        await asyncio.get_running_loop().run_in_executor(None, conn.recv)  # the start signal
        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    return {"elapsed_s": elapsed, "statuses": statuses}


def sockets_main(conn, ws_url: str, tokens: list[str]) -> None:
    conn.send(asyncio.run(_sockets(conn, ws_url, tokens)))


async def _sockets(conn, ws_url: str, tokens: list[str]) -> dict[str, float]:
    sockets = [(await chat_connect(ws_url, token, open_timeout=30))[0] for token in tokens]
    conn.send("ready")
    seen: dict[str, float] = {}

    async def listen(ws):
        async for frame in ws:
            event = json.loads(frame)
            # An update carries only its template's data fields: the probe is its order's id.
            if event["type"] == "update" and event["data"].get("order_id"):
                seen.setdefault(event["data"]["order_id"], time.time())

    async def heartbeat(ws):
        while True:
            await asyncio.sleep(10)
            await ws.send(json.dumps({"type": "ping", "ts": 0}))

    tasks = [asyncio.create_task(listen(ws)) for ws in sockets]
    tasks += [asyncio.create_task(heartbeat(ws)) for ws in sockets]
    await asyncio.get_running_loop().run_in_executor(None, conn.recv)  # "stop"
    for task in tasks:
        task.cancel()
    await asyncio.gather(*(ws.close() for ws in sockets), return_exceptions=True)
    return seen


def probe_main(conn, url: str, interval_s: float, prefix: str = "p") -> None:
    import httpx

    sent: dict[str, float] = {}
    conn.recv()  # start
    with httpx.Client(timeout=60) as client:
        i = 0
        while not conn.poll(0):
            probe = f"{prefix}{i}"
            event = {
                "type": "order.shipped",
                "data": {
                    "customer": {"external_id": f"probe-{i % PROBE_CUSTOMERS}"},
                    "order": {"id": probe},
                    "probe": probe,
                },
            }
            body, headers = signed(event)
            t0 = time.time()
            if client.post(url, content=body, headers=headers).status_code == 202:
                sent[probe] = t0
            i += 1
            time.sleep(max(0.0, interval_s - (time.time() - t0)))
    conn.recv()
    conn.send(sent)


def _spawn(target, *args):
    parent, child = mp.Pipe()
    process = mp.get_context("spawn").Process(target=target, args=(child, *args), daemon=True)
    process.start()
    return parent, process


def _answer(worker, timeout: float = 600):
    conn, process = worker
    deadline = time.monotonic() + timeout
    while not conn.poll(0.5):
        if not process.is_alive() or time.monotonic() > deadline:
            raise RuntimeError(f"client process {process.pid} died or hung (exit code {process.exitcode})")
    return conn.recv()


# -- servers and data ----------------------------------------------------------------------------


def daphne(app: str, env: dict[str, str], log: Path) -> tuple[subprocess.Popen, int]:
    return daphne_start(child_env(env), log, app=app)


def cpu_s(pid: int) -> float:
    import psutil

    times = psutil.Process(pid).cpu_times()
    return times.user + times.system


def run_load(url: str, requests: int, concurrency: int, clients: int, during=None, pid: int = 0) -> dict:
    share = [requests // clients + (1 if i < requests % clients else 0) for i in range(clients)]
    per_client = [concurrency // clients + (1 if i < concurrency % clients else 0) for i in range(clients)]
    workers = [_spawn(load_main, url, n, c) for n, c in zip(share, per_client, strict=True)]
    time.sleep(3)  # let the clients import and sign their requests
    if during is not None:
        during("start")
    cpu_before = cpu_s(pid) if pid else 0.0
    for conn, _ in workers:
        conn.send("go")
    results = [_answer(worker) for worker in workers]
    cpu = cpu_s(pid) - cpu_before if pid else 0.0
    if during is not None:
        during("stop")
    statuses: dict[str, int] = {}
    for result in results:
        for status, n in result["statuses"].items():
            statuses[str(status)] = statuses.get(str(status), 0) + n
    elapsed = max(r["elapsed_s"] for r in results)
    return {
        "requests": requests,
        "elapsed_s": round(elapsed, 3),
        "statuses": statuses,
        "accepted_per_s": round(statuses.get("202", 0) / elapsed, 1),
        # Server CPU per request: far less at the mercy of other load on the machine than a rate.
        "server_cpu_ms_per_request": round(cpu * 1000 / requests, 2) if pid else None,
    }


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, int(round(q * len(ordered))) - 1))]


def measure_kefu(env: dict[str, str], args, tokens: list[str]) -> dict:
    tmp = Path(f"/tmp/kefu-bench-webhooks-{os.getpid()}")
    server, port = daphne("config.asgi:application", env, tmp / "daphne-kefu.log")
    worker = celery_worker_start(child_env(env), tmp / "celery.log", threads=4)
    url = f"http://127.0.0.1:{port}/webhooks/{SLUG}/"
    try:
        run_load(url, 100, 8, 1)  # warm up: imports, connections
        _wait_processed()  # the warm-up's events, before anything is measured
        sockets = _spawn(sockets_main, f"ws://127.0.0.1:{port}", tokens)
        assert _answer(sockets) == "ready"
        # At rest first (no other load, nothing queued): the path itself, 30 probes.
        rest = _spawn(probe_main, url, 0.1, "rest")
        time.sleep(3)  # the probe process imports
        rest[0].send("start")
        time.sleep(3)
        rest[0].send("stop")
        sent_at_rest = _answer(rest)
        probe = _spawn(probe_main, url, 0.1)

        def during(phase: str) -> None:
            probe[0].send(phase)

        result = run_load(url, args.requests, args.concurrency, args.clients, during, pid=server.pid)
        sent = _answer(probe)
        drained = _wait_processed()
        time.sleep(2)  # the last probes' updates in flight
        sockets[0].send("stop")
        seen = _answer(sockets)
        latencies = [(seen[p] - t0) * 1000 for p, t0 in sent.items() if p in seen]
        at_rest = [(seen[p] - t0) * 1000 for p, t0 in sent_at_rest.items() if p in seen]
        result.update(
            {
                "at_rest_probes": f"{len(at_rest)}/{len(sent_at_rest)}",
                "at_rest_latency_p50_ms": round(statistics.median(at_rest), 1) if at_rest else None,
                "at_rest_latency_p95_ms": round(percentile(at_rest, 0.95), 1) if at_rest else None,
                "probes_sent": len(sent),
                "probes_received": len(latencies),
                "latency_p50_ms": round(statistics.median(latencies), 1) if latencies else None,
                "latency_p95_ms": round(percentile(latencies, 0.95), 1) if latencies else None,
                "latency_max_ms": round(max(latencies), 1) if latencies else None,
                "worker_drained_s_after_load": drained,
            }
        )
        return result
    finally:
        process_stop(server, timeout=20)
        process_stop(worker, timeout=20)


def _wait_processed(timeout: float = 120) -> float | None:
    """Seconds until the worker has processed every stored event (None: not within timeout)."""
    from apps.webhooks.models import WebhookEvent

    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if not WebhookEvent.objects.filter(status="received").exists():
            return round(time.monotonic() - started, 2)
        time.sleep(0.2)
    print("events not processed:", WebhookEvent.objects.filter(status="received").count())
    return None


def purge_queue(env: dict[str, str]) -> None:
    import redis

    redis.Redis.from_url(env["REDIS_URL"]).delete(env["CELERY_TASK_DEFAULT_QUEUE"])


def measure_intake(env: dict[str, str], args) -> dict[str, dict]:
    """Bare view and kefu intake (no worker) side by side, in alternating rounds, so that load
    from elsewhere on the machine falls on both alike; medians of the rounds."""
    tmp = Path(f"/tmp/kefu-bench-webhooks-{os.getpid()}")
    tmp.mkdir(exist_ok=True)
    servers = {
        "bare": daphne("bench.webhooks:bare_app", env, tmp / "daphne-bare.log"),
        "kefu_no_worker": daphne("config.asgi:application", env, tmp / "daphne-kefu-intake.log"),
    }
    rounds: dict[str, list[dict]] = {name: [] for name in servers}
    try:
        for _, port in servers.values():
            run_load(f"http://127.0.0.1:{port}/webhooks/{SLUG}/", 100, 8, 1)  # warm up
        per_round = args.requests // args.rounds
        for _ in range(args.rounds):
            for name, (proc, port) in servers.items():
                url = f"http://127.0.0.1:{port}/webhooks/{SLUG}/"
                rounds[name].append(run_load(url, per_round, args.concurrency, args.clients, pid=proc.pid))
    finally:
        for proc, _ in servers.values():
            process_stop(proc, timeout=20)
    summary = {}
    for name, results in rounds.items():
        statuses: dict[str, int] = {}
        for result in results:
            for status, n in result["statuses"].items():
                statuses[status] = statuses.get(status, 0) + n
        summary[name] = {
            "requests": per_round * args.rounds,
            "statuses": statuses,
            "accepted_per_s": statistics.median(r["accepted_per_s"] for r in results),
            "server_cpu_ms_per_request": statistics.median(r["server_cpu_ms_per_request"] for r in results),
            "rounds": results,
        }
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=2000, help="webhooks per target (default 2000)")
    parser.add_argument("--concurrency", type=int, default=16, help="requests in flight (default 16)")
    parser.add_argument("--clients", type=int, default=2, help="load client processes (default 2)")
    parser.add_argument("--rounds", type=int, default=3, help="alternating bare/kefu rounds (default 3)")
    parser.add_argument("--out", default=str(REPO / "bench" / "results" / "webhooks.json"))
    args = parser.parse_args()

    db_name = f"kefu_bench_{os.getpid()}"
    env = django_setup_scratch(db_name)
    try:
        from apps.customers.models import Customer
        from apps.customers.tokens import widget_token_issue
        from apps.webhooks.services import webhook_source_ensure

        webhook_source_ensure(slug=SLUG, secrets=[SECRET])
        customers = [Customer.objects.create(external_id=f"probe-{i}") for i in range(PROBE_CUSTOMERS)]
        tokens = [widget_token_issue(customer_id=c.pk)[0] for c in customers]
        results = measure_intake(env, args)
        from apps.webhooks.models import WebhookEvent

        WebhookEvent.objects.all().delete()  # the bare rows have no task; the kefu ones' are purged
        purge_queue(env)
        results["kefu"] = measure_kefu(env, args, tokens)
    finally:
        scratch_teardown(db_name, env)

    bare, kefu = results["bare"], results["kefu"]
    ratio = kefu["accepted_per_s"] / bare["accepted_per_s"] if bare["accepted_per_s"] else float("nan")
    print(
        f"\nWebhook intake on one Daphne process ({platform.machine()}, {os.cpu_count()} cores), "
        f"{args.requests} requests, {args.concurrency} in flight from {args.clients} client processes"
    )
    alone = results["kefu_no_worker"]
    ratio_alone = alone["accepted_per_s"] / bare["accepted_per_s"] if bare["accepted_per_s"] else float("nan")
    print(f"{'':30}{'bare view':>12}{'kefu, no worker':>18}{'kefu + worker':>16}")
    print(
        f"{'accepted (202) per second':30}{bare['accepted_per_s']:>12}{alone['accepted_per_s']:>18}"
        f"{kefu['accepted_per_s']:>16}"
    )
    print(f"{'kefu / bare':30}{'':>12}{ratio_alone:>17.2f}x{ratio:>15.2f}x")
    answers = [json.dumps(r["statuses"]) for r in (bare, alone, kefu)]
    print(f"{'answers':30}{answers[0]:>12}{answers[1]:>18}{answers[2]:>16}")
    cpu = [r["server_cpu_ms_per_request"] for r in (bare, alone, kefu)]
    print(f"{'server CPU ms per request':30}{cpu[0]:>12}{cpu[1]:>18}{cpu[2]:>16}")
    print(f"bare and kefu-no-worker: medians of {args.rounds} alternating rounds; kefu + worker: one run")
    print(
        f"intake -> customer socket under that load: p50 {kefu['latency_p50_ms']} ms, "
        f"p95 {kefu['latency_p95_ms']} ms, max {kefu['latency_max_ms']} ms "
        f"({kefu['probes_received']}/{kefu['probes_sent']} probes)"
    )
    print(
        f"intake -> customer socket at rest (no load):  p50 {kefu['at_rest_latency_p50_ms']} ms, "
        f"p95 {kefu['at_rest_latency_p95_ms']} ms ({kefu['at_rest_probes']} probes)"
    )
    print(f"worker finished the backlog {kefu['worker_drained_s_after_load']} s after the load ended\n")
    results["kefu_over_bare"] = round(ratio, 3)
    results["kefu_no_worker_over_bare"] = round(ratio_alone, 3)
    results["meta"] = {
        "requests": args.requests,
        "concurrency": args.concurrency,
        "clients": args.clients,
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        # The machine is shared: its load during the run says how much the numbers can be trusted.
        "load_average_1_5_15": [round(x, 2) for x in os.getloadavg()],
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
