"""Retrieval quality on a BEIR folder: vector-only, full-text-only and hybrid, in one run.

    .venv/bin/python bench/retrieval_quality.py [--beir ../shared/eval/techqa] [--kb techqa] [--k 10]

Runs `manage.py kb_eval` once per mode against the same knowledge base (the first run ingests
the corpus; later runs find it unchanged), prints a table and writes
bench/results/retrieval_quality.json. Latency is per query, query embedding included (the
query-embedding cache is cleared before each mode).
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
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.base")

MODES = ("vector", "fulltext", "hybrid")


def kb_eval_modes(*, beir: Path, kb: str, k: int) -> dict:
    """`manage.py kb_eval` in each mode (Django set up and migrated): mode -> its JSON."""
    from django.core.management import call_command

    from apps.knowledge.embeddings import query_cache

    results = {}
    for mode in MODES:
        query_cache.clear()  # every mode pays for its query embeddings (fulltext has none)
        out = StringIO()
        call_command("kb_eval", beir=beir, kb=kb, k=k, json=True, mode=mode, stdout=out, stderr=StringIO())
        results[mode] = json.loads(out.getvalue())
    return results


def print_modes(results: dict, *, title: str, k: int, label: str) -> None:
    """The table of `kb_eval_modes` results."""
    print(f"\n{title}: {results['hybrid']['queries']} queries, k = {k}")
    print(f"{label:>9} | {'recall@' + str(k):>9} | {'MRR@' + str(k):>7} | {'nDCG@' + str(k):>7} | "
          f"{'p50 ms':>7} | {'p95 ms':>7}")
    for mode in MODES:
        r = results[mode]
        print(f"{mode:>9} | {r['recall_at_k']:>9.4f} | {r['mrr_at_k']:>7.4f} | {r['ndcg_at_k']:>7.4f} | "
              f"{r['latency_ms']['p50']:>7} | {r['latency_ms']['p95']:>7}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--beir", type=Path, default=REPO.parent / "shared" / "eval" / "techqa")
    parser.add_argument("--kb", default="techqa")
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "retrieval_quality.json")
    args = parser.parse_args()

    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    results = kb_eval_modes(beir=args.beir, kb=args.kb, k=args.k)

    k = args.k
    print_modes(results, title=args.beir.name, k=k, label="mode")
    results["meta"] = {"beir": str(args.beir), "kb": args.kb, "k": k, "cpus": os.cpu_count(),
                       "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
