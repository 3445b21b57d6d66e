"""Time from `stop` to `message_end`, sent at random moments of an answer (PROTOCOL.md §2: within 1 s).

    .venv/bin/python bench/stop_latency.py [--trials 12] [--concurrency 4] [--providers builtin,openai]
                                           [--embed-delay 0.8] [--first-token 1.5]

One uvicorn process (single worker, --ws websockets-sansio, lifespan on) per provider, against a
throw-away database holding the demo knowledge base, embedded by tests/support/fake_llm.py (a local
OpenAI-compatible server: slow /v1/embeddings, streaming /v1/chat/completions with a slow first
token). Both providers use that embedder (EMBEDDING_PROVIDER=openai), so every question waits
--embed-delay for its embedding; questions carry a unique word so the per-process query cache
never answers them. `openai` also waits --first-token for the model's first token.
Phases, each trial on a fresh customer and socket:
- queued: answer 1 streams (its first `token` arrived); message 2 is acked, its answer is due
  behind answer 1; `stop` after 0..0.3 s. Measured until BOTH answers' `message_end`.
- retrieving: `stop` 0.05 s .. 0.9 x --embed-delay after the ack (the question is being embedded).
- first_token (openai only): `stop` while the model is asked and its first token is slow:
  --embed-delay + 0.1 s .. --embed-delay + --first-token - 0.1 s after the ack.
- streaming: `stop` 0..0.5 s after the first `token`.
A trial whose answer ended before its `stop` was sent is counted, not timed.
Prints a table and writes bench/results/stop_latency.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import platform
import random
import statistics
import sys
import time
import urllib.request
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
from _harness import (  # noqa: E402
    child_env,
    customer_tokens,
    django_setup_scratch,
    fake_llm_start,
    process_stop,
    scratch_teardown,
    uvicorn_start,
    ws_connect,
)

PHASES = ("queued", "retrieving", "first_token", "streaming")
END_TIMEOUT_S = 20.0
QUESTION = "How do I return an item and get a refund? (ref {ref})"


class ServerError(Exception):
    def __init__(self, event: dict) -> None:
        super().__init__(f"server error: {event}")
        self.event = event


class Socket:
    """A chat socket whose events are read into a queue, each with its arrival time."""

    def __init__(self, ws) -> None:
        self.ws = ws
        self.queue: asyncio.Queue = asyncio.Queue()
        self.ends: list[tuple[float, dict]] = []  # every message_end `next` went past or returned
        self.retries = 0  # messages answered `unavailable` and sent again (as a widget does)
        self.reader = asyncio.get_running_loop().create_task(self._read())

    async def _read(self) -> None:
        async for raw in self.ws:
            await self.queue.put((time.perf_counter(), json.loads(raw)))

    async def next(self, type_: str, timeout: float = END_TIMEOUT_S) -> tuple[float, dict]:
        deadline = time.perf_counter() + timeout
        while True:
            at, event = await asyncio.wait_for(self.queue.get(), max(0.01, deadline - time.perf_counter()))
            if event["type"] == "error":
                raise ServerError(event)
            if event["type"] == "message_end":
                self.ends.append((at, event))
            if event["type"] == type_:
                return at, event

    def ended(self) -> int:
        """message_end events received so far (seen, or still queued)."""
        return len(self.ends) + sum(e["type"] == "message_end" for _, e in list(self.queue._queue))

    async def send(self, frame: dict) -> float:
        at = time.perf_counter()
        await self.ws.send(json.dumps(frame))
        return at

    async def close(self) -> None:
        self.reader.cancel()
        await self.ws.close()


async def _message(sock: Socket, ref: str) -> str:
    """Send a question until it is acked (the same client_msg_id on `unavailable`)."""
    frame = {"type": "message", "client_msg_id": str(uuid.uuid4()), "text": QUESTION.format(ref=ref)}
    for attempt in range(5):
        await sock.send(frame)
        try:
            _, ack = await sock.next("ack")
            return ack["conversation_id"]
        except ServerError as exc:
            if exc.event["code"] != "unavailable" or attempt == 4:
                raise
            sock.retries += 1
            await asyncio.sleep(0.2)
    raise AssertionError("unreachable")


async def _ends(sock: Socket, count: int, since: float) -> tuple[float, list[dict]]:
    """Wait until `count` message_end events arrived; (seconds from `since` to the last, events)."""
    while len(sock.ends) < count:
        await sock.next("message_end")
    return sock.ends[-1][0] - since, [event for _, event in sock.ends]


async def trial(url: str, token: str, phase: str, args: argparse.Namespace, rng: random.Random) -> dict:
    ws = await ws_connect(url, open_timeout=30)
    sock = Socket(ws)
    try:
        await sock.send({"type": "auth", "token": token})
        await sock.next("ready")
        ref = uuid.uuid4().hex[:10]
        conversation_id = await _message(sock, ref)
        expected = 1
        if phase == "queued":
            await sock.next("token")
            await _message(sock, ref + "b")
            expected = 2
            await asyncio.sleep(rng.uniform(0, 0.3))
        elif phase == "retrieving":
            await asyncio.sleep(rng.uniform(0.05, 0.9 * args.embed_delay))
        elif phase == "first_token":
            low, high = args.embed_delay + 0.1, args.embed_delay + args.first_token - 0.1
            await asyncio.sleep(rng.uniform(low, high))
        else:
            await sock.next("token")
            await asyncio.sleep(rng.uniform(0, 0.5))
        if sock.ended() >= expected:
            return {"ended_before_stop": True, "retries": sock.retries}
        sent = await sock.send({"type": "stop", "conversation_id": conversation_id})
        seconds, ends = await _ends(sock, expected, sent)
        return {"seconds": seconds, "stopped": sum(bool(e["stopped"]) for e in ends), "ends": len(ends),
                "retries": sock.retries}
    except TimeoutError:
        return {"timeout": True, "retries": sock.retries}
    finally:
        await sock.close()


async def run_phase(url: str, tokens: list[str], phase: str, args: argparse.Namespace, seed: int) -> dict:
    gate = asyncio.Semaphore(args.concurrency)
    rng = random.Random(seed)

    async def one(token: str) -> dict:
        async with gate:
            return await trial(url, token, phase, args, rng)

    outcomes = await asyncio.gather(*(one(t) for t in tokens))
    times = sorted(o["seconds"] for o in outcomes if "seconds" in o)
    row = {
        "trials": len(outcomes),
        "timed": len(times),
        "ended_before_stop": sum("ended_before_stop" in o for o in outcomes),
        "timeouts": sum("timeout" in o for o in outcomes),
        "message_end_stopped_true": sum(o.get("stopped", 0) for o in outcomes),
        "message_end_total": sum(o.get("ends", 0) for o in outcomes),
        "messages_retried_after_unavailable": sum(o.get("retries", 0) for o in outcomes),
    }
    if times:
        row.update(
            p50_ms=round(statistics.median(times) * 1000, 1),
            p95_ms=round(times[math.ceil(0.95 * len(times)) - 1] * 1000, 1),
            max_ms=round(times[-1] * 1000, 1),
        )
    return row



def fake_stats(port: int) -> dict:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/stats", timeout=5) as response:
        return json.loads(response.read())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--trials", type=int, default=12, help="trials per phase and provider (default 12)")
    parser.add_argument("--concurrency", type=int, default=4, help="trials at once (default 4)")
    parser.add_argument("--providers", default="builtin,openai")
    parser.add_argument("--embed-delay", type=float, default=0.8, help="embeddings delay, s")
    parser.add_argument("--first-token", type=float, default=1.5, help="first token delay, s")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", default=str(REPO / "bench" / "results" / "stop_latency.json"))
    args = parser.parse_args()
    providers = args.providers.split(",")

    # The fake chat model: its first token after --first-token, then 120 words 30 ms apart.
    fake, fake_url = fake_llm_start(Path(f"/tmp/kefu-bench-stop-{os.getpid()}-fake.log"),
                                    first_token_s=args.first_token, token_interval_s=0.03, tokens=121,
                                    embed_delay_s=args.embed_delay)
    fake_port = int(fake_url.rsplit(":", 1)[1].split("/")[0])
    embedding_env = {"EMBEDDING_PROVIDER": "openai", "EMBEDDING_BASE_URL": fake_url,
                     "EMBEDDING_MODEL": "fake-embed", "EMBEDDING_DIMENSIONS": "384",
                     "EMBEDDING_WARM_UP": "false"}
    os.environ.update(embedding_env)
    db_name = f"kefu_bench_stop_{os.getpid()}"
    results: dict = {}
    env: dict[str, str] | None = None
    try:
        time.sleep(0.5)
        env = django_setup_scratch(db_name)
        from apps.knowledge.demo import demo_knowledge_base_load

        loaded = time.perf_counter()
        kb = demo_knowledge_base_load()
        print(f"demo knowledge base {kb.slug!r} embedded by the fake server "
              f"in {time.perf_counter() - loaded:.1f} s")
        tokens = customer_tokens(len(providers) * len(PHASES) * args.trials)
        for p_index, provider in enumerate(providers):
            server_env = child_env(env, **embedding_env, LLM_PROVIDER=provider, LLM_BASE_URL=fake_url,
                                   LLM_MODEL="fake-chat")
            log = Path(f"/tmp/kefu-bench-stop-{os.getpid()}-{provider}.log")
            proc, port = uvicorn_start(server_env, log)
            before = fake_stats(fake_port)
            try:
                for ph_index, phase in enumerate(PHASES):
                    if phase == "first_token" and provider != "openai":
                        continue  # builtin has no model to wait for
                    start = (p_index * len(PHASES) + ph_index) * args.trials
                    row = asyncio.run(run_phase(f"ws://127.0.0.1:{port}/ws/chat/",
                                                tokens[start : start + args.trials], phase, args,
                                                args.seed + ph_index))
                    results[f"{provider}/{phase}"] = row
                    print(f"  {provider:8} {phase:11} {row}")
            finally:
                process_stop(proc)
            after = fake_stats(fake_port)
            results[f"{provider}/fake_server"] = {k: after[k] - before[k] for k in after}
    finally:
        if env is not None:
            scratch_teardown(db_name, env)
        process_stop(fake)

    print(f"\nstop -> message_end, uvicorn single worker ({platform.machine()}, {os.cpu_count()} cores); "
          f"fake embeddings {args.embed_delay} s, fake first token {args.first_token} s")
    print(f"{'provider / phase':24}{'timed':>7}{'p50 ms':>10}{'p95 ms':>10}{'max ms':>10}"
          f"{'ended first':>13}{'timeouts':>10}{'stopped':>10}")
    for key, row in results.items():
        if key.endswith("/fake_server"):
            continue
        print(f"{key:24}{row['timed']:>7}{row.get('p50_ms', '-'):>10}{row.get('p95_ms', '-'):>10}"
              f"{row.get('max_ms', '-'):>10}{row['ended_before_stop']:>13}{row['timeouts']:>10}"
              f"{row['message_end_stopped_true']:>6}/{row['message_end_total']:<3}")
    for provider in providers:
        print(f"fake server requests while {provider} ran: {results[f'{provider}/fake_server']}")
    timed = [r for k, r in results.items() if "p95_ms" in r]
    met = bool(timed) and all(r["p95_ms"] < 1000 for r in timed)
    print(f"aim: p95 under 1000 ms: {'met' if met else 'NOT met'}\n")
    results["meta"] = {"trials": args.trials, "concurrency": args.concurrency,
                       "embed_delay_s": args.embed_delay,
                       "first_token_s": args.first_token, "seed": args.seed, "cpus": os.cpu_count(),
                       "python": platform.python_version(),
                       "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
