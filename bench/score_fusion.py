"""Rank fusion (RRF) against score fusion (a weighted sum of min-max or z-score normalised scores) for hybrid search.

RRF throws the scores away; Bruch et al. (2023, "An analysis of fusion functions for hybrid retrieval", ACM TOIS)
find a convex combination of normalised scores at least as good, and better when one retriever is clearly stronger
(XQuAD-R es: BM25 0.820, USE dense 0.754, RRF hybrid 0.819). For every judged query one dense and one BM25 search
(``--candidates`` chunks each, no reranker) are kept with their scores; each variant fuses them, pools chunks to
documents by their best chunk (as `sixfold eval` does) and is scored with ir-measures. The variant is *chosen* on
SciFact's train queries only; the other sets' test queries only show whether the choice holds.

    python bench/score_fusion.py [--data DIR] [--cache DIR] [--sets scifact xquad_r_en xquad_r_es ...]
Needs the eval indexes bench/eval_retrieval.py builds in --cache. Writes bench/results/score_fusion.json.
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
from fusion_weights import documents_of  # noqa: E402
from rerank_blend import ndcg  # noqa: E402

from benchdata import add_data_argument, check_data, default_cache_dir  # noqa: E402

DENSE_WEIGHTS = [0.3, 0.4, 0.5, 0.6, 0.7]


def collect(engine, queries: dict[str, str], candidates: int) -> dict[str, dict[str, list[tuple[int, float, str]]]]:
    """Per query and retriever: its top ``candidates`` chunks as (chunk id, score, file stem), best first."""
    out = {}
    for qid, text in queries.items():
        out[qid] = {}
        for mode in ("dense", "bm25"):
            hits = engine.search(text, candidates, mode=mode, rerank=None, candidates=candidates)
            out[qid][mode] = [(h.chunk_id, h.score, Path(h.path).stem) for h in hits]
    return out


def fused_docs(lists: dict[str, list[tuple[int, float, str]]], variant: str, stems: dict[str, str]) -> list[str]:
    from sixfold.retriever.fusion import convex_score_fusion, reciprocal_rank_fusion, zscore_fusion

    stem_of = {cid: stem for mode in lists.values() for cid, _, stem in mode}
    rankings = [[(cid, score) for cid, score, _ in lists[mode]] for mode in ("dense", "bm25")]
    if variant == "rrf":
        fused = reciprocal_rank_fusion(rankings)
    elif variant.startswith("z-score"):
        weight = float(variant.split("=")[1])
        fused = zscore_fusion(rankings, [weight, 1.0 - weight])
    else:
        weight = float(variant.split("=")[1])
        fused = convex_score_fusion(rankings, [weight, 1.0 - weight])
    return documents_of(fused, stem_of, stems)


def main() -> None:
    from sixfold.engine import Engine
    from sixfold.eval.datasets import load_retrieval_set
    from sixfold.eval.retrieval import _safe_name

    parser = argparse.ArgumentParser()
    add_data_argument(parser)
    parser.add_argument("--cache", type=Path, default=default_cache_dir("eval"), help="the eval indexes (%(default)s)")
    parser.add_argument("--sets", nargs="+", default=["scifact", "xquad_r_en", "xquad_r_es"], choices=list(SETS))
    parser.add_argument("--candidates", type=int, default=300, help="chunks per retriever before fusion (default 300)")
    parser.add_argument("--out", default=str(REPO / "bench" / "results" / "score_fusion.json"))
    args = parser.parse_args()
    check_data(parser, args.data, SETS["scifact"], *(SETS[name] for name in args.sets))
    splits = [("scifact", "train")] + [(name, "test") for name in args.sets]
    variants = ["rrf"] + [f"convex w={w}" for w in DENSE_WEIGHTS] + [f"z-score w={w}" for w in (0.4, 0.5, 0.6)]
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
        model = engine.status().model
        engine.close()
        key = f"{name}/{split}"
        table[key] = {"queries": len(data.queries), "embedder": model, "nDCG@10": {}}
        for variant in variants:
            runs = {q: fused_docs(lists[q], variant, stems) for q in data.queries}
            table[key]["nDCG@10"][variant] = ndcg(runs, data.qrels)
        print(f"{key}: {len(data.queries)} queries, {time.perf_counter() - started:.1f} s", flush=True)
        Path(args.out).write_text(json.dumps({"partial": True, "sets": table}, indent=2))
    chosen = max(variants, key=lambda v: table["scifact/train"]["nDCG@10"][v])
    print(f"\n{'variant':<16}" + "".join(f"{key:>20}" for key in table))
    for v in variants:
        mark = " *" if v == chosen else "  "
        print(f"{v:<14}{mark}" + "".join(f"{table[key]['nDCG@10'][v]:>20.4f}" for key in table))
    print(f"\n* chosen on scifact/train: {chosen} (hybrid search's fusion: retriever.search)")
    report = {"chosen_on_scifact_train": chosen, "candidates": args.candidates, "sets": table}
    Path(args.out).write_text(json.dumps(report, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
