"""How deep to rerank, how much to trust the reranker, how to weigh dense against BM25: one pass over SciFact.

For every query, one search with the cross-encoder scoring the fused top 100 gives each candidate's dense, BM25,
RRF and cross-encoder scores (fused top 50); every variant (fusion weight of dense vs BM25, rerank depth, reranker weight in the
rank fusion with the first stage, or the reranker's order alone) is then re-ranked from those numbers and scored
with ir-measures (documents pooled by their best chunk, as `sixfold eval` does). Variants are chosen on the held-out
*train* queries (the 10% `tune reranker` held out, same seed); test queries are read only with --splits test.

    python bench/rerank_blend.py [--reranker FOLDER] [--data DIR] [--index DIR]
--index defaults to bench/eval_retrieval.py's SciFact index ($SIXFOLD_BENCH_CACHE/eval/scifact or
~/.cache/sixfold/bench/eval/scifact).
Writes bench/results/rerank_blend_scifact.json.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
from benchdata import add_data_argument, check_data, default_cache_dir  # noqa: E402  (bench/ is sys.path[0])

DENSE_WEIGHTS = [0.5, 1.0, 1.5, 2.0]
DEPTHS = [10, 20, 30, 50]
RERANK_WEIGHTS = [None, 0.5, 1.0, 2.0, 3.0]  # None: the reranker's order alone


def collect(engine, queries: dict[str, str], reranker: str) -> dict[str, list[dict]]:
    out = {}
    for qid, text in queries.items():
        hits = engine.search(text, 300, mode="hybrid", rerank=reranker, rerank_depth=max(DEPTHS), rerank_weight=None)
        out[qid] = [{"doc": Path(h.path).stem, "chunk": h.chunk_id, **h.scores} for h in hits]
    return out


def rank(cands: list[dict], dense_w: float, depth: int | None, rerank_w: float | None) -> list[str]:
    from sixfold.retriever.fusion import reciprocal_rank_fusion

    dense = sorted((c for c in cands if "dense" in c), key=lambda c: -c["dense"])
    bm25 = sorted((c for c in cands if "bm25" in c), key=lambda c: -c["bm25"])
    fused = reciprocal_rank_fusion([[(c["chunk"], 0.0) for c in dense], [(c["chunk"], 0.0) for c in bm25]], [dense_w, 1.0])
    by_chunk = {c["chunk"]: c for c in cands}
    order = [cid for cid, _ in fused]
    if depth:
        head = [cid for cid in order[:depth] if "rerank" in by_chunk[cid]]
        ce = sorted(head, key=lambda cid: -by_chunk[cid]["rerank"])
        if rerank_w is None:
            new_head = ce
        else:
            blended = reciprocal_rank_fusion([[(c, 0.0) for c in ce], [(c, 0.0) for c in head]], [rerank_w, 1.0])
            new_head = [cid for cid, _ in blended]
        order = new_head + [cid for cid in order if cid not in set(new_head)]
    docs: list[str] = []
    for cid in order:
        doc = by_chunk[cid]["doc"]
        if doc not in docs:
            docs.append(doc)
    return docs[:100]


def ndcg(runs: dict[str, list[str]], qrels: dict[str, dict[str, int]]) -> float:
    import ir_measures
    from ir_measures import nDCG

    rows = [ir_measures.Qrel(q, d, g) for q, docs in qrels.items() for d, g in docs.items()]
    scored = [ir_measures.ScoredDoc(q, d, float(len(docs) - i)) for q, docs in runs.items() for i, d in enumerate(docs)]
    return float(ir_measures.calc_aggregate([nDCG @ 10], rows, scored)[nDCG @ 10])


def main() -> None:
    from sixfold.engine import Engine
    from sixfold.eval.datasets import load_beir_set
    from sixfold.eval.retrieval import _safe_name, reranker_queries
    from sixfold.tuner.data import split_queries

    parser = argparse.ArgumentParser()
    add_data_argument(parser)
    parser.add_argument(
        "--index",
        type=Path,
        default=default_cache_dir("eval") / "scifact",
        help="the SciFact eval index bench/eval_retrieval.py builds (default %(default)s)",
    )
    parser.add_argument("--reranker")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument(
        "--splits", nargs="+", default=["dev"], choices=["dev", "test"], help="test only to read, never to choose"
    )
    args = parser.parse_args()
    scifact = check_data(parser, args.data, "beir_scifact") / "beir_scifact"
    engine = Engine.open(args.index)
    reranker = args.reranker or engine.active_model("reranker")
    if not reranker:
        folder = Path(args.index) / "models" / "reranker"
        reranker = str(max((p for p in folder.glob("[0-9]*") if p.name.isdigit()), key=lambda p: int(p.name)))
    train = load_beir_set(scifact, "train")
    # the same held-out queries as `tune reranker` (same seed, 10%)
    _, dev = split_queries(reranker_queries(train), 0.1, args.seed, cap=200)
    dev_texts = {q.query for q in dev}
    splits = {}
    text_to_id = {v: k for k, v in train.queries.items()}
    dev_ids = [text_to_id[t] for t in dev_texts]
    splits["dev"] = ({q: train.queries[q] for q in dev_ids}, {q: train.qrels[q] for q in dev_ids})
    if "test" in args.splits:
        test = load_beir_set(scifact, "test")
        splits["test"] = (test.queries, test.qrels)
    if "dev" not in args.splits:
        del splits["dev"]
    results: dict = {"reranker": reranker, "variants": []}
    collected = {}
    for split, (queries, qrels) in splits.items():
        collected[split] = (
            collect(engine, queries, reranker),
            {q: {_safe_name(d): g for d, g in v.items()} for q, v in qrels.items()},
        )
    for dense_w in DENSE_WEIGHTS:
        for depth in [None, *DEPTHS]:
            for rerank_w in RERANK_WEIGHTS if depth else [None]:
                row = {"dense_weight": dense_w, "depth": depth, "rerank_weight": rerank_w}
                for split, (cands, qrels) in collected.items():
                    row[split] = ndcg({q: rank(c, dense_w, depth, rerank_w) for q, c in cands.items()}, qrels)
                results["variants"].append(row)
                print(row, flush=True)
    if "dev" in splits:
        best = max(results["variants"], key=lambda r: r["dev"])
        results["best_on_dev"] = best
        print("best on dev:", best)
    out = REPO / "bench" / "results" / "rerank_blend_scifact.json"
    out.write_text(json.dumps(results, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
