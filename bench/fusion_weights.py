"""Is equal-weight RRF (k = 60) the right hybrid default? A sweep of the dense weight and the RRF constant.

For every judged query of every set, one dense and one BM25 search (``--candidates`` chunks each, default 100,
no reranker) are kept; each variant fuses them with `retriever.fusion.reciprocal_rank_fusion` (dense weight w,
BM25 weight 1, constant k), pools chunks to documents by their best chunk (as `sixfold eval` does) and is scored
with ir-measures. The variant is *chosen* on SciFact's train queries only (no test query is read to choose); the
test splits of SciFact and the other sets only show whether the choice holds.

    python bench/fusion_weights.py [--data DIR] [--cache DIR] [--sets scifact cran cisi med xquad_r_en] [--candidates N]
Needs the eval indexes bench/eval_retrieval.py builds in --cache. Writes bench/results/fusion_weights.json.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
from eval_retrieval import SETS  # noqa: E402  (bench/ is on sys.path when run as a script)
from rerank_blend import ndcg  # noqa: E402

from benchdata import add_data_argument, check_data, default_cache_dir  # noqa: E402

DENSE_WEIGHTS = [0.5, 0.75, 1.0, 1.25, 1.5, 2.0]
RRF_KS = [10, 30, 60, 100]
DEPTH = 100  # documents scored per query


def collect(engine, queries: dict[str, str], candidates: int) -> dict[str, dict[str, list[tuple[int, str]]]]:
    """Per query and retriever: the ranked (chunk id, file stem) list of its top ``candidates`` chunks."""
    out = {}
    for qid, text in queries.items():
        out[qid] = {}
        for mode in ("dense", "bm25"):
            hits = engine.search(text, candidates, mode=mode, rerank=None, candidates=candidates)
            out[qid][mode] = [(h.chunk_id, Path(h.path).stem) for h in hits]
    return out


def fused_docs(lists: dict[str, list[tuple[int, str]]], dense_weight: float, k: int, stems: dict[str, str]) -> list[str]:
    from sixfold.retriever.fusion import reciprocal_rank_fusion

    stem_of = {cid: stem for mode in lists.values() for cid, stem in mode}
    fused = reciprocal_rank_fusion(
        [[(cid, 0.0) for cid, _ in lists["dense"]], [(cid, 0.0) for cid, _ in lists["bm25"]]], [dense_weight, 1.0], k
    )
    return documents_of(fused, stem_of, stems)


def documents_of(fused: list[tuple[int, float]], stem_of: dict[int, str], stems: dict[str, str]) -> list[str]:
    """The fused chunks pooled to judged documents by their best chunk (as `sixfold eval` does), top ``DEPTH``."""
    docs: list[str] = []
    for cid, _ in fused:
        doc = stems.get(stem_of[cid])
        if doc is not None and doc not in docs:
            docs.append(doc)
    return docs[:DEPTH]


def main() -> None:
    from sixfold.engine import Engine
    from sixfold.eval.datasets import load_retrieval_set
    from sixfold.eval.retrieval import _safe_name

    parser = argparse.ArgumentParser()
    add_data_argument(parser)
    parser.add_argument("--cache", type=Path, default=default_cache_dir("eval"), help="the eval indexes (%(default)s)")
    parser.add_argument("--sets", nargs="+", default=["scifact", "cran", "cisi", "med", "xquad_r_en"], choices=list(SETS))
    parser.add_argument("--candidates", type=int, default=100, help="chunks per retriever before fusion (default 100)")
    parser.add_argument("--out", default=str(REPO / "bench" / "results" / "fusion_weights.json"))
    args = parser.parse_args()
    check_data(parser, args.data, SETS["scifact"], *(SETS[name] for name in args.sets))
    splits = [("scifact", "train")] + [(name, "test") for name in args.sets]
    table: dict[str, dict] = {}
    for name, split in splits:
        index = Path(args.cache) / name
        if not (index / "sixfold-index.json").is_file():
            raise SystemExit(f"no eval index at {index}: run bench/eval_retrieval.py --sets {name} first")
        data = load_retrieval_set(args.data / SETS[name], split)
        stems = {_safe_name(d): d for d in data.corpus}
        engine = Engine.open(index)
        started = time.perf_counter()
        lists = collect(engine, data.queries, args.candidates)
        engine.close()
        key = f"{name}/{split}"
        table[key] = {"queries": len(data.queries), "seconds": round(time.perf_counter() - started, 1), "nDCG@10": {}}
        for w in DENSE_WEIGHTS:
            for k in RRF_KS:
                runs = {q: fused_docs(lists[q], w, k, stems) for q in data.queries}
                table[key]["nDCG@10"][f"w={w} k={k}"] = ndcg(runs, data.qrels)
        print(f"{key}: {len(data.queries)} queries, {table[key]['seconds']} s", flush=True)
    variants = list(table["scifact/train"]["nDCG@10"])
    chosen = max(variants, key=lambda v: table["scifact/train"]["nDCG@10"][v])
    default = "w=1.0 k=60"
    print(f"\n{'variant':<14}" + "".join(f"{key:>18}" for key in table))
    for v in variants:
        mark = " *" if v == chosen else (" d" if v == default else "  ")
        print(f"{v:<12}{mark}" + "".join(f"{table[key]['nDCG@10'][v]:>18.4f}" for key in table))
    print(f"\n* chosen on scifact/train: {chosen}; d = the shipped default ({default})")
    report = {"chosen_on_scifact_train": chosen, "default": default, "candidates": args.candidates, "sets": table}
    Path(args.out).write_text(json.dumps(report, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
