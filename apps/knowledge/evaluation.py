"""Retrieval evaluation on a BEIR-layout folder (PROTOCOL.md §5, kb_eval)."""

from __future__ import annotations

import csv
import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .ingestion import documents_index_inline
from .models import KnowledgeBase
from .retrieval import Mode, search
from .services import document_upsert


@dataclass(frozen=True)
class BeirSet:
    corpus: list[dict]
    queries: dict[str, str]
    qrels: dict[str, dict[str, int]]  # query id -> {corpus id: relevance}


def beir_load(folder: Path) -> BeirSet:
    folder = Path(folder)
    missing = [n for n in ("corpus.jsonl", "queries.jsonl", "qrels/test.tsv") if not (folder / n).is_file()]
    if missing:
        raise FileNotFoundError(f"{folder} is not a BEIR folder: missing {', '.join(missing)}.")
    corpus = [json.loads(line) for line in (folder / "corpus.jsonl").read_text().splitlines() if line.strip()]
    queries = {}
    for line in (folder / "queries.jsonl").read_text().splitlines():
        if line.strip():
            row = json.loads(line)
            queries[str(row["_id"])] = row["text"]
    qrels: dict[str, dict[str, int]] = {}
    with (folder / "qrels/test.tsv").open(newline="") as fh:
        reader = csv.reader(fh, delimiter="\t")
        next(reader, None)  # the header line
        for row in reader:
            if len(row) >= 3 and int(row[2]) > 0:
                qrels.setdefault(row[0], {})[row[1]] = int(row[2])
    return BeirSet(corpus=corpus, queries=queries, qrels=qrels)


def beir_ingest(*, kb: KnowledgeBase, beir: BeirSet, on_done: Callable | None = None) -> int:
    """Each BEIR document becomes one document, its `_id` the external id. Returns how many changed."""
    changed = []
    for row in beir.corpus:
        doc, needs = document_upsert(
            kb=kb,
            external_id=str(row["_id"]),
            filename=f"{row['_id']}.txt",
            data=(row.get("text") or "").encode(),
            title=row.get("title") or "",
        )
        if needs:
            changed.append(doc)
    documents_index_inline(changed, on_done=on_done)
    return len(changed)


def dcg(gains: list[float]) -> float:
    return sum(g / math.log2(i + 2) for i, g in enumerate(gains))


def beir_evaluate(*, kb: KnowledgeBase, beir: BeirSet, k: int, mode: Mode = "hybrid") -> dict:
    recall = mrr = ndcg = 0.0
    latencies: list[float] = []
    evaluated = 0
    for qid, relevant in beir.qrels.items():
        if qid not in beir.queries:
            continue
        started = time.perf_counter()
        passages = search(kb_slug=kb.slug, query=beir.queries[qid], k=k, mode=mode)
        latencies.append((time.perf_counter() - started) * 1000)
        retrieved = [p.external_id for p in passages]
        hits = [doc for doc in retrieved if doc in relevant]
        recall += len(hits) / len(relevant)
        mrr += next((1 / (i + 1) for i, doc in enumerate(retrieved) if doc in relevant), 0.0)
        ideal = dcg(sorted(relevant.values(), reverse=True)[:k])
        ndcg += dcg([relevant.get(doc, 0) for doc in retrieved]) / ideal
        evaluated += 1
    n = max(evaluated, 1)
    return {
        "queries": evaluated,
        "k": k,
        "recall_at_k": round(recall / n, 4),
        "mrr_at_k": round(mrr / n, 4),
        "ndcg_at_k": round(ndcg / n, 4),
        "latency_ms": {
            "p50": round(percentile(latencies, 50), 2),
            "p95": round(percentile(latencies, 95), 2),
        },
        "mode": mode,
    }


def percentile(values: list[float], pct: float) -> float:
    """Nearest-rank percentile; 0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[max(0, math.ceil(pct / 100 * len(ordered)) - 1)]
