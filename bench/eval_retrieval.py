"""Retrieval quality on every retrieval set in --data (../shared/data), every mode, through `sixfold eval retrieval`'s code.

    python bench/eval_retrieval.py [--sets scifact cran cisi med xquad_r_en xquad_r_es] [--reranker FOLDER]
        [--data DIR] [--cache DIR] [--limit N]

Each set's index is cached in --cache/<set> (default $SIXFOLD_BENCH_CACHE/eval or ~/.cache/sixfold/bench/eval;
a second run embeds nothing). `hybrid+rerank` uses --reranker, else
the SciFact eval index's active tuned reranker (trained by `sixfold tune reranker --beir beir_scifact --split
train --index <cache>/scifact`): on SciFact it never saw a test query; on the other sets it is used zero-shot.
Writes bench/results/eval_retrieval.json (one entry per set) and prints one table.
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

# Each set's path, relative to the data folder (--data).
SETS = {
    "scifact": "beir_scifact",
    "cran": "ir_classic_glasgow/cran",
    "cisi": "ir_classic_glasgow/cisi",
    "med": "ir_classic_glasgow/med",
    "xquad_r_en": "xquad_r/en.json",
    "xquad_r_es": "xquad_r/es.json",
}
# Published figures for the same models on the same sets (BEIR, Thakur et al. 2021, Table 2 / 3: BM25 and
# BM25 + MiniLM-L6 cross-encoder reranking of the BM25 top 100).
PUBLISHED = {"scifact": {"bm25": 0.665, "bm25+CE (BEIR)": 0.688}}
MODES = ["bm25", "dense", "hybrid", "hybrid+rerank"]


def main() -> None:
    from sixfold.engine import Engine
    from sixfold.eval.retrieval import eval_retrieval

    parser = argparse.ArgumentParser()
    parser.add_argument("--sets", nargs="+", default=list(SETS), choices=list(SETS))
    parser.add_argument("--reranker", help="cross-encoder folder (default: the SciFact eval index's active reranker)")
    add_data_argument(parser)
    parser.add_argument("--cache", type=Path, default=default_cache_dir("eval"), help="eval indexes, one per set (%(default)s)")
    parser.add_argument("--limit", type=int)
    parser.add_argument("--modes", nargs="+", default=MODES, choices=MODES)
    parser.add_argument("--out", default=str(REPO / "bench" / "results" / "eval_retrieval.json"))
    args = parser.parse_args()
    check_data(parser, args.data, *(SETS[name] for name in args.sets))
    cache = Path(args.cache)
    reranker = args.reranker or Engine.open(cache / "scifact").active_model("reranker")
    folder = cache / "scifact" / "models" / "reranker"
    versions = sorted((p for p in folder.glob("[0-9]*") if p.name.isdigit()), key=lambda p: int(p.name))
    if not reranker and versions:
        reranker = str(versions[-1])  # measured even when `tune` left it inactive (not better on held-out queries)
    out = Path(args.out)
    results = json.loads(out.read_text()) if out.is_file() else {}
    for name in args.sets:
        modes = [m for m in args.modes if reranker or m != "hybrid+rerank"]
        report = eval_retrieval(
            args.data / SETS[name],
            modes,
            cache / name,
            limit=args.limit,
            rerank=reranker,
            progress=lambda m, n=name: print(f"  {n}: {m}"),
        ).to_dict()
        report["published"] = PUBLISHED.get(name, {})
        report["reranker_use"] = (
            "trained on SciFact train queries" if name == "scifact" else "SciFact-trained, zero-shot on this set"
        )
        results[name] = report
        out.write_text(json.dumps(results, indent=2, default=str))
    header = f"{'set':<11} {'mode':<14} {'nDCG@10':>8} {'R@10':>7} {'R@100':>7} {'MRR@10':>7} {'s total':>8} {'p50 ms':>7}"
    print(header)
    for name, report in results.items():
        for mode, m in report["modes"].items():
            print(
                f"{name:<11} {mode:<14} {m['nDCG@10']:>8.4f} {m['Recall@10']:>7.4f} {m['Recall@100']:>7.4f} "
                f"{m['MRR@10']:>7.4f} {m.get('seconds', float('nan')):>8.0f} {m['p50_ms']:>7.0f}"
            )
        for label, value in report.get("published", {}).items():
            print(f"{name:<11} {'pub. ' + label:<14} {value:>8.3f}")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
