"""Streaming an answer: what a WebSocket customer sees beside a client reading the model directly.

    .venv/bin/python bench/streaming.py [--levels 1,100,200] [--first-token-ms 200] [--tokens-per-s 50]
                                        [--tokens 60] [--ws-clients 4] [--server uvicorn|daphne]
                                        [--web-concurrency N] [--questions same|distinct]
                                        [--floor after|same-moment]

Starts, on free loopback ports: tests/support/fake_llm.py (the fake OpenAI-compatible server with a fixed
first-token delay and token rate) and a Kefu web server (uvicorn as the Procfile runs it, or
Daphne) with LLM_PROVIDER=openai pointing at the fake, against a throw-away database holding the
demo help center and a throw-away Redis prefix (--web-concurrency N: N uvicorn workers, as
WEB_CONCURRENCY=N in the Procfile). For each level N, in the same moment (a shared
wall-clock instant): N WebSocket customers (PROTOCOL.md §2: POST /api/widget/session, `auth`,
`message`, then `token`s and `message_end`), spread over --ws-clients processes; then, as the
floor, N direct streams to the fake server at once through the official `openai` SDK, from
another process. The floor runs right after the customers (`--floor after`, the default), not
beside them (`--floor same-moment`): beside them, its N SDK streams took as much CPU as the
Kefu web process during the burst (0.97 against 0.90 CPU-s in the first 1.5 s at 100 at once)
and doubled the streams the fake model serves, so the 2 cores also carried a second load that
a deployment's server does not. All ask "I forgot my password, how do I reset it?", which the relevance gate
lets through to the model (`--questions same`, the default: a burst of one question, as when
everyone asks about the same outage; Kefu's search and judge caches then serve the repeats), or
with `--questions distinct` each customer asks a different question of the demo help center's
in-scope dev set (apps/assistant/evalsets/demo_inscope.jsonl, 219 questions: no cache helps).
Measured per answer:
- first token: from sending (`message` / the API call) to the first text the customer sees: a
  `token`, a `partial` (an answer that began before the socket listened), or else `message_end`;
- gaps: time between consecutive text frames (`token` events / SSE deltas);
- frames/s: `token` frames per second of streaming, per answer (the turn runner coalesces).
Target (issue 11): WebSocket first-token p95 <= direct p95 * 1.1 + 20 ms.
Prints a table and writes bench/results/streaming.json (with the commit measured).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
from _harness import (  # noqa: E402
    chat_connect,
    chat_token,
    child_env,
    django_setup_scratch,
    fake_llm_start,
    process_stop,
    recv_json,
    scratch_teardown,
    server_start,
)

QUESTION = "I forgot my password, how do I reset it?"


# -- client processes (python bench/streaming.py --client ...) -------------------------------


def _questions(kind: str) -> list[str]:
    if kind == "same":
        return [QUESTION]
    from apps.assistant.evalsets import load_questions

    return [q["text"] for q in sorted(load_questions("demo_inscope"), key=lambda q: q["_id"])]


async def _ws_customer(base: str, start_at: float, question: str) -> dict:
    ws, _ = await chat_connect(base, await chat_token(base))
    async with ws:
        await asyncio.sleep(max(0.0, start_at - time.time()))
        sent = time.perf_counter()
        await ws.send(json.dumps({"type": "message", "client_msg_id": str(uuid.uuid4()), "text": question}))
        arrivals: list[float] = []
        first_text = None  # a `token`, or a `partial` when the answer began before the socket listened
        while True:
            event = await recv_json(ws, timeout=300)
            if event["type"] in ("token", "partial") and event["text"]:
                first_text = first_text or time.perf_counter() - sent
                if event["type"] == "token":
                    arrivals.append(time.perf_counter() - sent)
            elif event["type"] == "message_end":
                end = time.perf_counter() - sent
                return {"arrivals": arrivals, "end": end, "cited": bool(event["citations"]),
                        "first": first_text or end}  # no live text: the customer reads it at the end


async def _direct_stream(base: str, start_at: float) -> dict:
    import openai

    client = openai.AsyncOpenAI(base_url=base, api_key="fake", max_retries=0, timeout=300)
    await asyncio.sleep(max(0.0, start_at - time.time()))
    sent = time.perf_counter()
    arrivals: list[float] = []
    stream = await client.chat.completions.create(model="fake", stream=True,
                                                  messages=[{"role": "user", "content": QUESTION}])
    async for part in stream:
        if part.choices and part.choices[0].delta.content:
            arrivals.append(time.perf_counter() - sent)
    await client.close()
    end = time.perf_counter() - sent
    return {"arrivals": arrivals, "end": end, "cited": True, "first": arrivals[0] if arrivals else end}


async def _client(kind: str, base: str, count: int, start_at: float, questions: list[str]) -> list[dict]:
    async def counted(i: int) -> dict:
        try:
            if kind == "ws":
                return await _ws_customer(base, start_at, questions[i % len(questions)])
            return await _direct_stream(base, start_at)
        except Exception as exc:  # a failed answer is a result too: counted, not a crash
            return {"arrivals": [], "end": 0.0, "cited": False, "first": None, "error": repr(exc)[:200]}

    return list(await asyncio.gather(*(counted(i) for i in range(count))))


# -- the run ---------------------------------------------------------------------------------


def spawn_client(kind: str, base: str, count: int, start_at: float, questions: str = "same",
                 first: int = 0) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, __file__, "--client", kind, "--base", base, "--count", str(count),
         "--start-at", repr(start_at), "--questions", questions, "--first", str(first)],
        cwd=REPO, stdout=subprocess.PIPE, text=True,
    )


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, round(p / 100 * len(ordered) + 0.5) - 1))]


def summarise(answers: list[dict]) -> dict:
    # First text the customer sees, for every answer that completed (streamed or not).
    firsts = [a["first"] * 1000 for a in answers if a.get("first") is not None]
    gaps = [(b - a) * 1000 for x in answers for a, b in zip(x["arrivals"], x["arrivals"][1:], strict=False)]
    rates = [(len(x["arrivals"]) - 1) / (x["arrivals"][-1] - x["arrivals"][0])
             for x in answers if len(x["arrivals"]) > 1 and x["arrivals"][-1] > x["arrivals"][0]]
    return {
        "answers": len(answers),
        "failed": sum("error" in a for a in answers),
        "with_tokens": sum(bool(a["arrivals"]) for a in answers),
        "cited": sum(a["cited"] for a in answers),
        "first_token_ms": {"p50": round(pct(firsts, 50), 1), "p95": round(pct(firsts, 95), 1),
                           "max": round(max(firsts, default=float("nan")), 1)},
        "gap_ms": {"p50": round(pct(gaps, 50), 1), "p95": round(pct(gaps, 95), 1),
                   "max": round(max(gaps, default=float("nan")), 1)},
        "frames_per_answer": round(statistics.mean(len(a["arrivals"]) for a in answers), 1),
        "frames_per_s": {"p50": round(pct(rates, 50), 1), "max": round(max(rates, default=0.0), 1)},
        "end_ms": {"p50": round(pct([a["end"] * 1000 for a in answers if "error" not in a], 50), 1),
                   "p95": round(pct([a["end"] * 1000 for a in answers if "error" not in a], 95), 1)},
    }


def _warm_up_wait(log: Path, processes: int, timeout_s: float = 240.0) -> float:
    """Seconds until each of the web `processes` logged that its knowledge warm-up finished
    (apps/knowledge/warm_up.py), or `timeout_s`."""
    started = time.monotonic()
    while time.monotonic() - started < timeout_s:
        if log.read_text(errors="replace").count("knowledge warm-up finished") >= processes:
            break
        time.sleep(0.5)
    return time.monotonic() - started


def run_level(n: int, web: str, fake: str, ws_clients: int, questions: str = "same",
              floor: str = "after") -> dict:
    """N customers at once through Kefu, and N streams read directly (the floor): right after
    them (`after`), or at the same moment (`same-moment`)."""
    start_at = _start_at(n, 0.03)  # time for every customer to connect and authenticate
    per = [n // ws_clients + (1 if i < n % ws_clients else 0) for i in range(min(ws_clients, n))]
    firsts = [sum(per[:i]) for i in range(len(per))]  # distinct: customer k of the level asks question k
    procs = [("ws", spawn_client("ws", web, c, start_at, questions, first))
             for c, first in zip(per, firsts, strict=True) if c]
    if floor == "same-moment":
        procs.append(("direct", spawn_client("direct", fake, n, start_at)))
    results: dict[str, list[dict]] = {"ws": [], "direct": []}
    _collect(procs, results)
    if floor == "after":
        time.sleep(1)  # the last answers' tails (stored, broadcast) end before the floor starts
        _collect([("direct", spawn_client("direct", fake, n, _start_at(n, 0.01)))], results)
    return {kind: summarise(answers) for kind, answers in results.items()}


def _start_at(n: int, per_client_s: float) -> float:
    """A shared wall-clock instant for a level's clients, after they have started and connected."""
    start_at = time.time() + 3 + n * per_client_s
    if os.environ.get("BENCH_START_FILE"):  # for a profiler or CPU sampler to line up with
        Path(os.environ["BENCH_START_FILE"]).write_text(repr(start_at))
    return start_at


def _collect(procs: list[tuple[str, subprocess.Popen]], results: dict[str, list[dict]]) -> None:
    for kind, proc in procs:
        out, _ = proc.communicate(timeout=600)
        if proc.returncode:
            raise RuntimeError(f"a {kind} client process failed ({proc.returncode})")
        results[kind] += json.loads(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--client", choices=["ws", "direct"])
    parser.add_argument("--base")
    parser.add_argument("--count", type=int)
    parser.add_argument("--start-at", type=float)
    parser.add_argument("--levels", default="1,100,200")
    parser.add_argument("--first-token-ms", type=float, default=200.0)
    parser.add_argument("--tokens-per-s", type=float, default=50.0)
    parser.add_argument("--tokens", type=int, default=60)
    parser.add_argument("--ws-clients", type=int, default=4)
    parser.add_argument("--server", choices=["uvicorn", "daphne"], default="uvicorn")
    parser.add_argument("--web-concurrency", type=int, default=int(os.environ.get("WEB_CONCURRENCY") or 1),
                        help="uvicorn workers, as the Procfile's WEB_CONCURRENCY (default: it, or 1)")
    parser.add_argument("--questions", choices=["same", "distinct"], default="same",
                        help="every customer asks one question (default), or each a different one")
    parser.add_argument("--floor", choices=["after", "same-moment"], default="after",
                        help="read the model directly right after each level (default), or at the "
                             "same moment, sharing the cores and the fake model with it")
    parser.add_argument("--first", type=int, default=0)
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "streaming.json")
    args = parser.parse_args()
    if args.client:
        questions = _questions(args.questions)[args.first:] or [QUESTION]
        print(json.dumps(asyncio.run(_client(args.client, args.base, args.count, args.start_at, questions))))
        return

    db_name = f"kefu_bench_streaming_{os.getpid()}"
    env = django_setup_scratch(db_name)
    from apps.knowledge.demo import demo_knowledge_base_load

    demo_knowledge_base_load()
    logs = Path(f"/tmp/kefu-bench-streaming-{os.getpid()}")
    logs.mkdir(exist_ok=True)
    fake, fake_url = fake_llm_start(logs / "fake.log", first_token_s=args.first_token_ms / 1000,
                                    token_interval_s=1 / args.tokens_per_s, tokens=args.tokens)
    fake_port = int(fake_url.rsplit(":", 1)[1].split("/")[0])
    web_env = child_env(env, LLM_PROVIDER="openai", LLM_BASE_URL=f"http://127.0.0.1:{fake_port}/v1",
                        LLM_MODEL="fake", LLM_API_KEY="fake", EMBEDDING_WARM_UP="true",
                        RATELIMIT_SESSION_IP="100000/minute",  # 200 sessions from one loopback address
                        LOG_LEVEL="INFO")  # the warm-up's end is logged at INFO
    if args.web_concurrency > 1 and args.server != "uvicorn":
        parser.error("--web-concurrency needs --server uvicorn")
    web, web_port = server_start(args.server, web_env, logs / "web.log",
                                 extra=("--backlog", "2048", "--workers", str(args.web_concurrency)))
    results: dict = {}
    try:
        base = f"http://127.0.0.1:{web_port}"
        # Warm-up: the web processes load the embedding model in the background after they start
        # (each worker: enough customers that every one is likely to have answered).
        for _ in range(10):
            n = 1 if args.web_concurrency == 1 else 4 * args.web_concurrency
            if run_level(n, base, f"http://127.0.0.1:{fake_port}/v1", 1)["ws"]["with_tokens"] == n:
                break
            time.sleep(5)
        # ...and their knowledge bases' label vectors (EMBEDDING_WARM_UP: 12-15 s of one core for
        # the demo's two models): a burst meanwhile shares the cores with it, and docs/deployment.md
        # says to send a new process traffic once it is warm. So the levels wait for it.
        waited = _warm_up_wait(logs / "web.log", args.web_concurrency)
        print(f"knowledge warm-up of the web process(es) finished {waited:.1f} s after the first answer",
              file=sys.stderr)
        for n in (int(x) for x in args.levels.split(",")):
            results[str(n)] = run_level(n, base, f"http://127.0.0.1:{fake_port}/v1", args.ws_clients,
                                        args.questions, args.floor)
    finally:
        for proc in (web, fake):
            process_stop(proc, timeout=15)
        scratch_teardown(db_name, env)

    print(f"\nfake model: first token {args.first_token_ms:.0f} ms, {args.tokens_per_s:.0f} tokens/s, "
          f"{args.tokens} tokens; {args.server}, {args.web_concurrency} web process(es); "
          f"the direct floor {'after each level' if args.floor == 'after' else 'at the same moment'}")
    print(f"{'N':>4} | {'client':>6} | {'1st p50':>8} | {'1st p95':>8} | {'gap p50':>8} | {'gap p95':>8} | "
          f"{'frames':>6} | {'frames/s':>8} | {'end p95':>8} | {'w/ tok':>7} | target 1st p95")
    for n, level in results.items():
        target = level["direct"]["first_token_ms"]["p95"] * 1.1 + 20
        for kind in ("direct", "ws"):
            r = level[kind]
            mark = "" if kind == "direct" else (
                f"<= {target:.0f} ms: {'met' if r['first_token_ms']['p95'] <= target else 'MISSED'}")
            print(f"{n:>4} | {kind:>6} | {r['first_token_ms']['p50']:>8} | {r['first_token_ms']['p95']:>8} | "
                  f"{r['gap_ms']['p50']:>8} | {r['gap_ms']['p95']:>8} | {r['frames_per_answer']:>6} | "
                  f"{r['frames_per_s']['p50']:>8} | {r['end_ms']['p95']:>8} | "
                  f"{r['with_tokens']:>3}/{r['answers']:<3} | {mark}")
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True,
                            text=True).stdout.strip()
    results["meta"] = {"server": args.server, "first_token_ms": args.first_token_ms,
                       "tokens_per_s": args.tokens_per_s, "tokens": args.tokens,
                       "questions": args.questions,
                       "question": QUESTION if args.questions == "same" else None,
                       "ws_client_processes": args.ws_clients, "web_concurrency": args.web_concurrency,
                       "floor": args.floor,
                       "commit": commit, "cpus": os.cpu_count(),
                       "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
