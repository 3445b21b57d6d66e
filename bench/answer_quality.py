"""Answer quality over the demo help center, English and Chinese: each dev set's report half, and
its tune half beside it.

    .venv/bin/python bench/answer_quality.py [--provider builtin] [--limit N] [--beir DIR --kb-beir SLUG]

In a throw-away database (bench/_harness.py), ingests the demo help center
(apps/knowledge/demo_articles) into a bench knowledge base and runs
`manage.py assistant_eval --evalset demo` (and `--evalset demo-zh` over help-center-zh's articles,
apps/knowledge/demo_articles_zh) on each half of apps/assistant/evalsets (the split is
sha1(id); see its README): every question asked in a fresh conversation through the configured
provider (LLM_PROVIDER, default builtin), as the command does. Time to outcome is measured
in-process, through the provider (message stored, retrieval, gate, answer), not through a
server's WebSocket. The tune half is the one thresholds were chosen on: its column is shown for
comparison only; quote the report half.
With --beir (e.g. ../shared/eval/techqa), also runs kb_eval's three modes and the BEIR
assistant_eval on that folder, as this bench did before the dev set.
Prints a table and writes bench/results/answer_quality.json. Targets (issue 16, report half):
right-article answers >= 85% of in-scope, wrong article <= 5%, off-topic declined >= 90%;
issue 21 asks the same right-article and off-topic shares of the Chinese set.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from io import StringIO
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
from _harness import django_setup_scratch, results_write, scratch_teardown, table_print  # noqa: E402

# Result key -> (assistant_eval --evalset, the bench knowledge base it is loaded into).
EVALSETS = {"demo": ("demo", "bench-demo"), "demo_zh": ("demo-zh", "bench-demo-zh")}
HALVES = ("report", "tune")
TARGETS = {"cited_relevant": 0.85, "wrong_article": 0.05, "offtopic_declined": 0.90}


def demo_eval(*, evalset: str, kb: str, half: str, limit: int) -> dict:
    from django.core.management import call_command

    out = StringIO()
    started = time.perf_counter()
    call_command("assistant_eval", evalset=evalset, kb=kb, half=half, limit=limit, json=True,
                 stdout=out, stderr=StringIO())
    result = json.loads(out.getvalue())
    result["seconds"] = round(time.perf_counter() - started, 1)
    return result


def meets(result: dict) -> bool:
    inscope, offtopic = result["inscope"], result["offtopic"]
    return (inscope["cited_relevant"] >= TARGETS["cited_relevant"]
            and inscope["wrong_article"] <= TARGETS["wrong_article"]
            and offtopic["declined"] >= TARGETS["offtopic_declined"])


def print_demo(results: dict, provider: str, title: str) -> None:
    cols = [results[h] for h in HALVES]

    def pct(section: str, key: str) -> list[str]:
        return [f"{c[section][key]:.1%} ({c[section]['counts'][key]})" for c in cols]

    rows = [
        ["in-scope questions", *[c["inscope"]["questions"] for c in cols]],
        ["in-scope answered, a right article (>= 85%)", *pct("inscope", "cited_relevant")],
        ["in-scope answered, only wrong articles (<= 5%)", *pct("inscope", "wrong_article")],
        ["in-scope clarified", *pct("inscope", "clarified")],
        ["in-scope clarified, a right article suggested", *pct("inscope", "clarified_right_suggestion")],
        ["in-scope declined", *pct("inscope", "declined")],
        ["off-topic questions", *[c["offtopic"]["questions"] for c in cols]],
        ["off-topic declined (>= 90%)", *pct("offtopic", "declined")],
        ["off-topic clarified", *pct("offtopic", "clarified")],
        ["off-topic answered", *pct("offtopic", "answered")],
    ]
    for section in ("inscope", "offtopic"):
        for source in cols[0][section].get("by_source", {}):
            rows.append([f"off-topic from {source}: declined",
                         *[f"{x[section]['by_source'][source]['declined']}/"
                           f"{x[section]['by_source'][source]['questions']}" for x in cols]])
    for section, label in (("inscope", "in-scope"), ("offtopic", "off-topic")):
        for p in ("p50", "p95"):
            times = [c[section]["time_to_outcome_ms"][p] for c in cols]
            rows.append([f"time to outcome {p} ms ({label})", *times])
    rows.append(["issue 16 targets met", *["yes" if meets(c) else "no" for c in cols]])
    print(f"\n{title}, provider {provider} (time through the provider, in-process)")
    table_print(["", "report half", "tune half (tuned on)"], rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--provider", default=os.environ.get("LLM_PROVIDER", "builtin"))
    parser.add_argument("--limit", type=int, default=0, help="ask only the first N of each set")
    parser.add_argument("--beir", type=Path, help="also a BEIR folder (e.g. ../shared/eval/techqa)")
    parser.add_argument("--kb-beir", default="techqa")
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    os.environ["LLM_PROVIDER"] = args.provider

    db_name = f"kefu_bench_answers_{os.getpid()}"
    env = django_setup_scratch(db_name)
    try:
        from django.conf import settings

        results: dict = {}
        for key, (evalset, kb) in EVALSETS.items():
            results[key] = {half: demo_eval(evalset=evalset, kb=kb, half=half, limit=args.limit)
                            for half in HALVES}
            print_demo(results[key], settings.LLM_PROVIDER, title=f"demo help center, --evalset {evalset}")
        if args.beir:
            from django.core.management import call_command
            from retrieval_quality import kb_eval_modes, print_modes

            results["retrieval"] = kb_eval_modes(beir=args.beir, kb=args.kb_beir, k=args.k)
            out = StringIO()
            unanswerable = args.beir / "unanswerable.jsonl"
            options = {"unanswerable": unanswerable} if unanswerable.is_file() else {}
            call_command("assistant_eval", beir=args.beir, kb=args.kb_beir, json=True, stdout=out,
                         stderr=StringIO(), **options)
            results["assistant_beir"] = json.loads(out.getvalue())
            print_modes(results["retrieval"], title=args.beir.name, k=args.k, label="retrieval")
            print(f"\nassistant on {args.beir.name}: {json.dumps(results['assistant_beir'])}")
        results["meta"] = {"provider": settings.LLM_PROVIDER, "limit": args.limit,
                           "kb": {key: kb for key, (_, kb) in EVALSETS.items()},
                           "timing": "in-process through the provider", "targets": TARGETS,
                           "beir": str(args.beir) if args.beir else None, "cpus": os.cpu_count(),
                           "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    finally:
        scratch_teardown(db_name, env)
    results_write("answer_quality", results, args.out)


if __name__ == "__main__":
    main()
