"""Rebuilding a vector index from DuckDB: peak memory and time, every embedding loaded at once (sixfold before
2026-12-07) against read a block of chunk ids at a time (``indexer.store._build_vectors``). Issue 16, "what one
machine holds": a commit that retrains an ivf / ivfpq index as the corpus grows, a repair of a damaged vectors file
and a model switch all rebuild the index from the embeddings in DuckDB.

    .venv/bin/python bench/rebuild_memory.py                  # 1M chunks, flat and ivfpq (~15 min on 2 cores)
    .venv/bin/python bench/rebuild_memory.py --quick          # 50k chunks, to check it works
    .venv/bin/python bench/rebuild_memory.py --chunks 10000000 --kinds ivfpq --ways "in blocks" \
        --out bench/results/rebuild_memory_10m.json            # 15 GB of DuckDB; all at once would need ~45 GB

The DuckDB file has the index's own ``chunks`` table (``store.SCHEMA``; text and metadata left empty) holding N
random unit 384-d vectors (MiniLM's size) under chunk ids with gaps. Each (way, kind) runs in a fresh process, so its
peak RSS (``VmHWM``) is its own; "extra" is the peak less the process's size before the rebuild (Python, numpy,
FAISS, DuckDB loaded and the file opened). Both ways build the same index (checked: ids and top 10 of 20 queries).
Printed as a table; JSON in ``--out`` (bench/results/rebuild_memory.json).
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

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

DIM = 384
BLOCK = 100_000


def make_db(path: Path, n: int) -> None:
    import duckdb
    import numpy as np
    import pyarrow as pa

    from sixfold.indexer.store import SCHEMA

    con = duckdb.connect(str(path))
    con.execute(SCHEMA.format(dim=DIM))
    rng = np.random.default_rng(0)
    for start in range(0, n, BLOCK):
        size = min(BLOCK, n - start)
        vectors = rng.standard_normal((size, DIM)).astype(np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        ids = np.arange(start, start + size, dtype=np.int64) * 2  # every other id: gaps, as removals leave them
        table = pa.table({"chunk_id": ids, "embedding": pa.FixedSizeListArray.from_arrays(pa.array(vectors.ravel()), DIM)})
        con.register("block", table)
        con.execute(f"INSERT INTO chunks (chunk_id, embedding) SELECT chunk_id, embedding::FLOAT[{DIM}] FROM block")
        con.unregister("block")
    con.close()


def status_mib(field: str) -> float:
    """``VmRSS`` (now) or ``VmHWM`` (peak) of this process. Not ``ru_maxrss``: Linux carries it over from the parent
    across fork and exec, so a child of the process that wrote 10M rows reported that writer's 15 GB as its own peak."""
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return 0.0


def child(db: str, way: str, kind: str) -> None:
    """One rebuild in this process; prints its JSON."""
    import duckdb
    import faiss
    import numpy as np

    from sixfold.indexer import store
    from sixfold.indexer import vectors as vec

    faiss.omp_set_num_threads(os.cpu_count() or 1)
    con = duckdb.connect(db, read_only=True)
    before = status_mib("VmRSS")
    started = time.perf_counter()
    if way == "all at once":
        ids, vectors = store._load_embeddings(con, DIM, None)
        index = vec.build_index(kind, DIM, ids, vectors)
        del ids, vectors
    else:
        index = store._build_vectors(con, kind, DIM)
    seconds = time.perf_counter() - started
    peak = status_mib("VmHWM")
    queries = np.random.default_rng(1).standard_normal((20, DIM)).astype(np.float32)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    top = index.search(queries, 10)[1].tolist()
    print(json.dumps({"way": way, "kind": vec.index_kind(index), "ntotal": int(index.ntotal), "seconds": seconds,
                      "rss_before_mib": before, "peak_mib": peak, "extra_mib": peak - before, "top10": top}))  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--chunks", type=int, default=1_000_000)
    parser.add_argument("--kinds", default="flat,ivfpq")
    parser.add_argument("--ways", default="all at once,in blocks", help="comma-separated (default both)")
    parser.add_argument("--quick", action="store_true", help="50k chunks")
    parser.add_argument("--db", type=Path, help="a DuckDB file this script wrote before (kept), instead of a new one")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "rebuild_memory.json")
    parser.add_argument("--child", nargs=3, metavar=("DB", "WAY", "KIND"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(*args.child)
        return 0
    n = 50_000 if args.quick else args.chunks
    rows = []
    with tempfile.TemporaryDirectory(dir=os.environ.get("TMPDIR")) as scratch:
        db = args.db or Path(scratch) / "chunks.duckdb"
        if not db.exists():
            started = time.perf_counter()
            make_db(db, n)
            size = db.stat().st_size / 2**20
            print(f"{n:,} chunks written in {time.perf_counter() - started:.0f} s ({size:,.0f} MiB)", file=sys.stderr)
        for kind in args.kinds.split(","):
            tops = {}
            for way in args.ways.split(","):
                out = subprocess.run(
                    [sys.executable, __file__, "--child", str(db), way, kind], check=True, capture_output=True, text=True
                ).stdout
                row = json.loads(out.strip().splitlines()[-1])
                tops[way] = row.pop("top10")
                rows.append(row)
                print(f"  {kind} {way}: {row['seconds']:.1f} s, peak {row['peak_mib']:,.0f} MiB", file=sys.stderr)
            if len(tops) == 2 and tops["all at once"] != tops["in blocks"]:
                raise SystemExit(f"{kind}: the two ways built different indexes")
    head = ["kind", "way", "chunks", "seconds", "RSS before (MiB)", "peak RSS (MiB)", "extra (MiB)"]
    print("| " + " | ".join(head) + " |\n|" + "---|" * len(head))
    for r in rows:
        cells = [r["kind"], r["way"], f"{r['ntotal']:,}", f"{r['seconds']:.1f}", f"{r['rss_before_mib']:,.0f}"]
        cells += [f"{r['peak_mib']:,.0f}", f"{r['extra_mib']:,.0f}"]
        print("| " + " | ".join(cells) + " |")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"chunks": n, "dim": DIM, "block": BLOCK, "date": time.strftime("%Y-%m-%d"),
                                    "cpus": os.cpu_count(), "rows": rows}, indent=1) + "\n")  # fmt: skip
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
