"""Answer quality on a BEIR folder: retrieval (kb_eval, three modes) and answers (assistant_eval).

    .venv/bin/python bench/answer_quality.py [--beir ../shared/eval/techqa] [--kb techqa] [--k 10]
                                             [--unanswerable FILE]

Runs `manage.py kb_eval` once per mode (vector, fulltext, hybrid) against one knowledge base (the
first run ingests the corpus; later runs find it unchanged), then `manage.py assistant_eval` with
the configured provider (LLM_PROVIDER, default builtin): every answerable question and every
question of --unanswerable (default: the folder's unanswerable.jsonl) asked as a customer would.
Prints one table and writes bench/results/answer_quality.json. Targets (issue 11): hybrid
nDCG@10 >= 0.88, unanswerable declined >= 90%, answerable citing a relevant document >= 85%.
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

from retrieval_quality import kb_eval_modes, print_modes  # noqa: E402  (bench/ is the script's folder)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--beir", type=Path, default=REPO.parent / "shared" / "eval" / "techqa")
    parser.add_argument("--kb", default="techqa")
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--unanswerable", type=Path)
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "answer_quality.json")
    args = parser.parse_args()
    unanswerable = args.unanswerable or args.beir / "unanswerable.jsonl"

    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    retrieval = kb_eval_modes(beir=args.beir, kb=args.kb, k=args.k)
    out = StringIO()
    started = time.perf_counter()
    options = {"unanswerable": unanswerable} if unanswerable.is_file() else {}
    call_command("assistant_eval", beir=args.beir, kb=args.kb, json=True, stdout=out, stderr=StringIO(),
                 **options)
    answers = json.loads(out.getvalue())
    answers["seconds"] = round(time.perf_counter() - started, 1)

    k = args.k
    print_modes(retrieval, title=args.beir.name, k=k, label="retrieval")
    print(f"\nassistant ({settings.LLM_PROVIDER}): {answers['questions']} answerable questions citing a "
          f"relevant document: {answers['cited_relevant']:.1%} (target 85%)")
    print(f"assistant ({settings.LLM_PROVIDER}): {answers['unanswerable']} unanswerable questions declined: "
          f"{answers['declined']:.1%} (target 90%)")
    results = {"retrieval": retrieval, "assistant": answers, "meta": {
        "beir": str(args.beir), "kb": args.kb, "k": k, "unanswerable": str(unanswerable),
        "provider": settings.LLM_PROVIDER, "cpus": os.cpu_count(),
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
