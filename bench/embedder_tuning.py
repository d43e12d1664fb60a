"""Embedder tuning on BEIR SciFact: train on the train qrels, score nDCG@10 / Recall@10 on the 300 test queries.

Base vs tuned all-MiniLM-L6-v2, dense retrieval over the whole corpus (5,183 abstracts, title + abstract per
document embedded directly with sentence-transformers, no chunking; 256 tokens, the model's own limit).
Training uses sixfold's tuner (``sixfold.tuner.embedder.train_embedder``: SentenceTransformerTrainer +
MultipleNegativesRankingLoss) on the (query, relevant abstract) pairs of ``qrels/train.tsv``; the test queries
are disjoint from the train queries. Writes bench/results/embedder_tuning.json.

    nice -n 5 python bench/embedder_tuning.py [--epochs 1] [--batch-size 32]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import ir_measures  # noqa: E402
import numpy as np  # noqa: E402
from ir_measures import R, nDCG  # noqa: E402

from sixfold.core.models import DEFAULT_EMBEDDER, resolve_model  # noqa: E402
from sixfold.tuner.data import Pair  # noqa: E402
from sixfold.tuner.embedder import EmbedderTrainConfig, load_for_eval, train_embedder  # noqa: E402

from benchdata import add_data_argument, check_data, default_cache_dir  # noqa: E402  (bench/ is sys.path[0])

CACHE = default_cache_dir("tuner")


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def read_qrels(path: Path) -> dict[str, dict[str, int]]:
    qrels: dict[str, dict[str, int]] = {}
    with open(path) as handle:
        for row in csv.DictReader(handle, delimiter="\t"):
            if int(row["score"]) > 0:
                qrels.setdefault(row["query-id"], {})[row["corpus-id"]] = int(row["score"])
    return qrels


def score(embedder, doc_ids, doc_vectors, queries, qrels) -> dict:
    qids = [q for q in qrels if q in queries]
    qv = embedder.encode([queries[q] for q in qids])
    sims = qv @ doc_vectors.T
    top = np.argsort(-sims, axis=1)[:, :100]
    run = [ir_measures.ScoredDoc(q, doc_ids[d], float(sims[i, d])) for i, q in enumerate(qids) for d in top[i]]
    rel = [ir_measures.Qrel(q, d, r) for q in qids for d, r in qrels[q].items()]
    agg = ir_measures.calc_aggregate([nDCG @ 10, R @ 10], rel, run)
    return {"nDCG@10": agg[nDCG @ 10], "Recall@10": agg[R @ 10], "queries": len(qids)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=float, default=1.0)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--learning-rate", type=float, default=2e-5)
    ap.add_argument("--out", default=str(REPO / "bench" / "results" / "embedder_tuning.json"))
    add_data_argument(ap)
    args = ap.parse_args()
    scifact = check_data(ap, args.data, "beir_scifact") / "beir_scifact"

    corpus = read_jsonl(scifact / "corpus.jsonl")
    doc_ids = [d["_id"] for d in corpus]
    doc_text = {d["_id"]: (d.get("title", "") + " " + d.get("text", "")).strip() for d in corpus}
    queries = {q["_id"]: q["text"] for q in read_jsonl(scifact / "queries.jsonl")}
    train_q, test_q = read_qrels(scifact / "qrels" / "train.tsv"), read_qrels(scifact / "qrels" / "test.tsv")
    assert not set(train_q) & set(test_q), "train and test queries overlap"
    pairs = [Pair(queries[q], doc_text[d]) for q, docs in train_q.items() if q in queries for d in docs if d in doc_text]
    base = resolve_model(DEFAULT_EMBEDDER)
    texts = [doc_text[d] for d in doc_ids]

    results: dict = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": f"{os.cpu_count()} cores",
        "dataset": "BEIR SciFact",
        "corpus_docs": len(doc_ids),
        "train_pairs": len(pairs),
        "train_queries": len(train_q),
        "test_queries": len(test_q),
        "doc_text": "title + abstract, one vector per document, 256 tokens",
    }
    t0 = time.perf_counter()
    embedder = load_for_eval(base.name, base.path)
    base_cache = CACHE / "scifact_base_vectors.npy"
    if base_cache.is_file():
        base_vectors = np.load(base_cache)
    else:
        base_vectors = embedder.encode(texts)
        CACHE.mkdir(parents=True, exist_ok=True)
        np.save(base_cache, base_vectors)
    results["base"] = score(embedder, doc_ids, base_vectors, queries, test_q)
    results["base_seconds"] = time.perf_counter() - t0
    print("base", results["base"], flush=True)

    config = EmbedderTrainConfig(epochs=args.epochs, batch_size=args.batch_size, learning_rate=args.learning_rate)
    results["config"] = config.__dict__
    t0 = time.perf_counter()
    tuned_dir = CACHE / f"scifact_embedder_e{args.epochs}_b{args.batch_size}_lr{args.learning_rate}"
    if not (tuned_dir / "config.json").is_file():
        train_embedder(base.path, pairs, CACHE / "scifact_embedder_work", tuned_dir, config)
    results["train_seconds"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    tuned = load_for_eval("tuned", str(tuned_dir))
    results["tuned"] = score(tuned, doc_ids, tuned.encode(texts), queries, test_q)
    results["tuned_seconds"] = time.perf_counter() - t0
    print("tuned", results["tuned"], flush=True)
    results["delta"] = {k: results["tuned"][k] - results["base"][k] for k in ("nDCG@10", "Recall@10")}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=2))
    print(f"{'metric':<10} {'base':>7} {'tuned':>7} {'delta':>7}")
    for k in ("nDCG@10", "Recall@10"):
        print(f"{k:<10} {results['base'][k]:7.3f} {results['tuned'][k]:7.3f} {results['delta'][k]:+7.3f}")


if __name__ == "__main__":
    main()
