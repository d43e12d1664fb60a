"""Vector search at scale: flat / ivf / hnsw / ivfpq at 1M vectors, ivfpq at 10M, and what an index costs per chunk.

    HF_HUB_OFFLINE=1 .venv/bin/python bench/vector_scale.py            # 1M and 10M (about 40 min on 2 busy cores)
    HF_HUB_OFFLINE=1 .venv/bin/python bench/vector_scale.py --quick    # 20k and 100k, to check it works

Vectors: synthetic 384-d vectors made by ``bench/index_throughput.py``'s generator (``base_texts`` and
``Generator``, imported, not copied): normalised mixtures of three real MiniLM embeddings of SQuAD / AG News / SciFact
texts plus noise from their own covariance. Queries: real SQuAD question embeddings. Each index is built by
``sixfold.indexer.vectors`` exactly as an index commit builds it and searched with its ``search_params``, one query
at a time with k = 300 (what ``Engine.search`` asks the vector index for), with FAISS on one OpenMP thread and on two.
recall@10: the share of the exact top 10 found in the first 10 results.

The largest size is streamed: vectors are generated in blocks of 100k (the generator is deterministic, so the
first 1M of the 10M stream are the 1M set), each block is added to the index and folded into the exact top 100 of
every query (brute force, block by block), then dropped; 10M x 384 float32 (15 GB) is never held. ivfpq is trained
on its first ``nlist x 64`` vectors (an iid sample: the generator draws every vector independently).

S. What an index costs per chunk beyond the vectors: the SQuAD v1.1 dev contexts indexed with ``Engine.index``
(MiniLM), DuckDB file and tantivy folder bytes per chunk.

Printed as tables; JSON in ``--out`` (bench/results/vector_scale.json). Load (other processes' cores, load
average) is recorded for every phase, since this 2-core machine is shared.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

ROOT = Path(__file__).resolve().parents[1]
for path in (ROOT, ROOT / "bench"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

import faiss  # noqa: E402
import numpy as np  # noqa: E402
from index_throughput import (  # noqa: E402  (the generator of part B and its helpers)
    SQUAD,
    Generator,
    Load,
    RssPeak,
    base_texts,
    log,
    machine_info,
    pct,
    rss_mib,
    squad_articles,
    squad_questions,
    table,
    write_squad_corpus,
)

from sixfold.core.models import DEFAULT_EMBEDDER  # noqa: E402
from sixfold.indexer import vectors as vec  # noqa: E402
from sixfold.retriever.search import CANDIDATES  # noqa: E402

from benchdata import add_data_argument, check_data, default_cache_dir  # noqa: E402

BLOCK = 100_000
TRUTH_K = 100
TARGET = {"recall@10": 0.95, "p50_ms": 10.0}


# ---------------------------------------------------------------------------------------------------
# vectors and ground truth
# ---------------------------------------------------------------------------------------------------
def embed_inputs(args, embedder) -> tuple[np.ndarray, np.ndarray]:
    """The generator's real base embeddings and the query embeddings (cached: embedding 4,300 texts takes a minute)."""
    cache = default_cache_dir("vector_scale") / f"inputs-{args.base_texts}-{args.queries}-{args.seed}.npz"
    if cache.exists():
        saved = np.load(cache)
        return saved["base"], saved["queries"]
    articles = squad_articles(args.data)
    rng = np.random.default_rng(args.seed)
    texts = base_texts(articles, args.base_texts, rng, args.data)
    questions = squad_questions(articles)
    chosen = [questions[i] for i in rng.choice(len(questions), args.queries, replace=False)]
    log(f"embedding {len(texts)} base texts and {len(chosen)} SQuAD questions")
    base = embedder.encode(texts, batch_size=64).astype(np.float32)
    queries = embedder.encode(chosen, batch_size=64).astype(np.float32)
    cache.parent.mkdir(parents=True, exist_ok=True)
    np.savez(cache, base=base, queries=queries)
    return base, queries


class StreamingTruth:
    """Exact top-``k`` (inner product) of every query over vectors seen block by block."""

    def __init__(self, queries: np.ndarray, k: int) -> None:
        self.queries = queries
        self.k = k
        self.scores = np.full((len(queries), 0), -np.inf, dtype=np.float32)
        self.ids = np.zeros((len(queries), 0), dtype=np.int64)

    def add(self, block: np.ndarray, first_id: int) -> None:
        scores = self.queries @ block.T
        k = min(self.k, scores.shape[1])
        top = np.argpartition(-scores, k - 1, axis=1)[:, :k]
        merged_scores = np.concatenate([self.scores, np.take_along_axis(scores, top, 1)], 1)
        merged_ids = np.concatenate([self.ids, top + first_id], 1)
        keep = np.argsort(-merged_scores, axis=1, kind="stable")[:, : self.k]
        self.scores = np.take_along_axis(merged_scores, keep, 1)
        self.ids = np.take_along_axis(merged_ids, keep, 1)


def blocks(gen: Generator, n: int):
    """(first id, block) of ``n`` generated vectors, ``BLOCK`` at a time (the same stream as ``gen.make(n)``)."""
    for start in range(0, n, BLOCK):
        yield start, gen.make(min(BLOCK, n - start), block=BLOCK)


# ---------------------------------------------------------------------------------------------------
# measuring one index
# ---------------------------------------------------------------------------------------------------
def index_bytes(index: faiss.Index, workdir: Path) -> int:
    """Bytes of the index as ``vectors.faiss`` (what sixfold writes and what a reader loads into memory)."""
    path = workdir / "size.faiss"
    faiss.write_index(index, str(path))
    size = path.stat().st_size
    path.unlink()
    return size


def timed_search(index: faiss.Index, queries: np.ndarray, k: int, params, threads: int) -> tuple[list[float], np.ndarray]:
    """Single-query latencies (ms), as retriever.dense.dense_search calls FAISS, on ``threads`` OpenMP threads."""
    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(threads)
    try:
        found = np.empty((len(queries), k), dtype=np.int64)
        for q in queries[:5]:
            index.search(q.reshape(1, -1), k, params=params)
        times = []
        for i, q in enumerate(queries):
            q = np.ascontiguousarray(q.reshape(1, -1))
            t = time.perf_counter()
            _, ids = index.search(q, k, params=params)
            times.append((time.perf_counter() - t) * 1000)
            found[i] = ids[0]
        return times, found
    finally:
        faiss.omp_set_num_threads(before)


def recall_at(found: np.ndarray, truth: np.ndarray, at: int = 10) -> float:
    return float(np.mean([len(set(f[:at].tolist()) & set(t[:at].tolist())) / at for f, t in zip(found, truth, strict=True)]))


def point(index: faiss.Index, queries: np.ndarray, truth: np.ndarray, k: int, params) -> dict:
    """recall@10 and p50 / p95 on 1 and 2 threads of one search setting."""
    out: dict = {}
    for threads in (1, 2):
        with Load() as load:
            times, found = timed_search(index, queries, k, params, threads)
        out[f"p50_ms_{threads}t"] = pct(times, 50)
        out[f"p95_ms_{threads}t"] = pct(times, 95)
        out[f"other_cores_{threads}t"] = load.result["other_cores"]
        out["recall@10"] = recall_at(found, truth)
        out["recall@100"] = recall_at(found, truth, 100) if k >= 100 and truth.shape[1] >= 100 else float("nan")
    out["meets_target"] = out["recall@10"] >= TARGET["recall@10"] and min(out["p50_ms_1t"], out["p50_ms_2t"]) <= TARGET["p50_ms"]
    return out


def describe(kind: str, index: faiss.Index) -> dict:
    if kind == "ivf":
        inner = faiss.extract_index_ivf(index)
        return {"nlist": int(inner.nlist), "nprobe": int(inner.nprobe)}
    if kind == "hnsw":
        return {"M": vec.HNSW_M, "efConstruction": vec.HNSW_EF_CONSTRUCTION, "efSearch": f"max({vec.HNSW_EF_SEARCH}, k)"}
    if kind == "ivfpq":
        _outer, refine, ivf, _sq8 = vec._ivfpq_parts(index)
        return {
            "nlist": int(ivf.nlist),
            "nprobe": int(ivf.nprobe),
            "pq_m": int(ivf.pq.M),
            "pq_bits": int(ivf.pq.nbits),
            "k_factor": float(refine.k_factor),
            "refine": "SQ8",
        }
    return {}


def with_params(kind: str, index: faiss.Index, k: int, **over):
    """search_params for ``k``, with nprobe / efSearch / k_factor overridden (for the sweeps)."""
    params = vec.search_params(index, None, k)
    if kind == "ivfpq":
        params.base_index_params_nprobe = vec._ivfpq_parts(index)[2].nprobe
    if kind == "ivf" and "nprobe" in over:
        params.nprobe = over["nprobe"]
    if kind == "hnsw" and "efSearch" in over:
        params.efSearch = over["efSearch"]
    if kind == "ivfpq":  # new objects: base_index_params reads back as a plain SearchParameters proxy
        base = faiss.SearchParametersIVF(nprobe=over.get("nprobe", params.base_index_params_nprobe))
        params = faiss.IndexRefineSearchParameters(k_factor=over.get("k_factor", params.k_factor), base_index_params=base)
        params.keep = base
    return params


def sweep(kind: str, index: faiss.Index, queries: np.ndarray, truth: np.ndarray, k: int, quick: bool) -> list[dict]:
    rows = []
    if kind == "ivf":
        nlist = faiss.extract_index_ivf(index).nlist
        grid = [{"nprobe": v} for v in (8, 16, 32, 64, 128, 256) if v <= nlist]
    elif kind == "hnsw":
        grid = [{"efSearch": v} for v in (300, 512, 1024)]
    elif kind == "ivfpq":
        nlist = vec._ivfpq_parts(index)[2].nlist
        probes = [v for v in (16, 32, 64, 128, 256, 512) if v <= nlist]
        grid = [{"nprobe": p, "k_factor": f} for p in probes for f in (1, 4)]
    else:
        return rows
    for setting in grid:
        row = {**setting, **point(index, queries, truth, k, with_params(kind, index, k, **setting))}
        rows.append(row)
        log(f"    sweep {kind} {setting}: recall@10 {row['recall@10']:.4f}, p50 {row['p50_ms_1t']:.2f} / {row['p50_ms_2t']:.2f}")
    return rows


def pq_only(index: faiss.Index, queries: np.ndarray, truth: np.ndarray, k: int) -> dict:
    """recall@10 of the PQ stage alone (no SQ8 re-scoring), to show what the refine stage buys."""
    outer, _refine, ivf, _sq8 = vec._ivfpq_parts(index)
    id_map = faiss.vector_to_array(outer.id_map)
    _, found = ivf.search(queries, k, params=faiss.SearchParametersIVF(nprobe=ivf.nprobe))
    return {"recall@10": recall_at(np.where(found >= 0, id_map[np.maximum(found, 0)], -1), truth)}


def removal_cost(index: faiss.Index, n: int, chunks: int = 100) -> dict:
    """Time to remove one file's ``chunks`` vectors (what an incremental update of a changed file does), 3 times."""
    times = []
    for rep in range(3):
        ids = np.arange(rep * chunks, (rep + 1) * chunks, dtype=np.int64) * (n // (4 * chunks))
        t = time.perf_counter()
        removed = vec.remove_ids(index, ids)
        times.append(time.perf_counter() - t)
        assert removed == chunks, removed
    return {"chunks": chunks, "seconds": times}


def measure(kind: str, index: faiss.Index, build: dict, queries, truth, k, workdir: Path, args) -> dict:
    n = int(index.ntotal)
    size = index_bytes(index, workdir)
    row = {
        "kind": kind,
        "n": n,
        **build,
        "parameters": describe(kind, index),
        "index_bytes": size,
        "bytes_per_vector": size / n,
        "vectors_per_gib": (1 << 30) / (size / n),
        "rss_mib_after_build": rss_mib(),
    }
    row["default"] = point(index, queries, truth, k, vec.search_params(index, None, k))
    if kind == "ivfpq":
        row["pq_only"] = pq_only(index, queries, truth, k)
    if not args.no_sweep:
        row["sweep"] = sweep(kind, index, queries, truth, k, args.quick)
    d = row["default"]
    log(
        f"  {kind:<6} n={n:>10,}  build {row['build_s']:7.1f}s  {size / 2**20:8.0f} MiB ({row['bytes_per_vector']:.0f} B/vec)  "
        f"p50 {d['p50_ms_1t']:.2f} / {d['p50_ms_2t']:.2f} ms (1 / 2 thr)  recall@10 {d['recall@10']:.4f}"
    )
    return row


# ---------------------------------------------------------------------------------------------------
# the sizes
# ---------------------------------------------------------------------------------------------------
def in_memory_size(args, gen_seed: int, base, queries, n: int, kinds: list[str], workdir: Path, results: dict) -> None:
    """Every kind at ``n`` vectors held in memory (float32), built by vec.build_index."""
    gen = Generator(base, gen_seed, noise=args.noise)
    with Load() as load:
        t = time.perf_counter()
        data = gen.make(n, block=BLOCK)
        gen_s = time.perf_counter() - t
    log(f"n = {n:,}: generated in {gen_s:.1f}s (RSS {rss_mib():.0f} MiB)")
    ids = np.arange(n, dtype=np.int64)
    with Load() as truth_load:
        truth = StreamingTruth(queries, TRUTH_K)
        for start in range(0, n, BLOCK):
            truth.add(data[start : start + BLOCK], start)
    size = {"n": n, "generate_s": gen_s, "generate_load": load.result, "truth_s": truth_load.result["wall_s"], "rows": []}
    for kind in kinds:
        with Load() as load, RssPeak() as rss:
            t = time.perf_counter()
            index = vec.build_index(kind, data.shape[1], ids, data)
            build_s = time.perf_counter() - t
        build = {"build_s": build_s, "build_load": load.result, "build_rss_peak_delta_mib": rss.peak - rss.start}
        row = measure(kind, index, build, queries, truth.ids, args.k, workdir, args)
        if kind == "ivfpq":
            row["remove_100_chunks"] = removal_cost(index, n)
        size["rows"].append(row)
        del index
        results["sizes"][str(n)] = size
        save(results, args)
    del data


def streamed_size(args, gen_seed: int, base, queries, n: int, workdir: Path, results: dict) -> None:
    """ivfpq at ``n`` vectors that are never all in memory: train on the first nlist x 64, then add block by block."""
    dim = base.shape[1]
    n_train = vec.ivfpq_nlist(n) * vec.IVFPQ_TRAIN_PER_LIST
    gen = Generator(base, gen_seed, noise=args.noise)
    with Load() as load, RssPeak() as rss:
        t = time.perf_counter()
        sample = gen.make(n_train, block=BLOCK)
        t_train = time.perf_counter()
        index = vec.train_ivfpq(dim, sample, n)
        train_s = time.perf_counter() - t_train
        del sample
        log(f"n = {n:,}: ivfpq trained on {n_train:,} vectors in {train_s:.1f}s")
        gen = Generator(base, gen_seed, noise=args.noise)  # the same stream again, from its first vector
        truth = StreamingTruth(queries, TRUTH_K)
        add_s = truth_s = 0.0
        for start, block in blocks(gen, n):
            t1 = time.perf_counter()
            index.add_with_ids(block, np.arange(start, start + len(block), dtype=np.int64))
            t2 = time.perf_counter()
            add_s += t2 - t1
            truth.add(block, start)
            truth_s += time.perf_counter() - t2
            if start % (10 * BLOCK) == 0:
                log(f"  added {start + len(block):,} (add {add_s:.0f}s, truth {truth_s:.0f}s, RSS {rss_mib():.0f} MiB)")
        total_s = time.perf_counter() - t
    build = {
        "build_s": train_s + add_s,
        "train_s": train_s,
        "add_s": add_s,
        "train_points": n_train,
        "generate_s_excluded": total_s - train_s - add_s - truth_s,
        "truth_s": truth_s,
        "build_load": load.result,
        "build_rss_peak_delta_mib": rss.peak - rss.start,
        "rss_peak_mib": rss.peak,
    }
    row = measure("ivfpq", index, build, queries, truth.ids, args.k, workdir, args)
    row["remove_100_chunks"] = removal_cost(index, n)
    results["sizes"][str(n)] = {"n": n, "streamed": True, "rows": [row]}
    save(results, args)


def storage_per_chunk(args, embedder, workdir: Path) -> dict:
    """DuckDB and tantivy bytes per chunk of a real index (the SQuAD v1.1 dev contexts, MiniLM)."""
    from sixfold.engine import Engine

    corpus = workdir / "squad"
    articles = squad_articles(args.data)
    info = write_squad_corpus(articles[: args.storage_articles] if args.storage_articles else articles, corpus)
    index_dir = workdir / "squad-index"
    with Load() as load:
        engine = Engine.open(index_dir, model=DEFAULT_EMBEDDER)
        report = engine.index(corpus)
    status = engine.status()
    engine.close()
    gen_dir = index_dir / json.loads((index_dir / "sixfold-index.json").read_text())["generation"]
    duck = (gen_dir / "chunks.duckdb").stat().st_size
    lexical = sum(p.stat().st_size for p in (gen_dir / "lexical").rglob("*") if p.is_file())
    vectors = (gen_dir / "vectors.faiss").stat().st_size
    chunks = status.chunks
    text_chars = sum(len(p.read_text()) for p in corpus.rglob("*.txt"))
    out = {
        "corpus": f"SQuAD v1.1 dev contexts: {info['files']} files, {info['paragraphs']:,} paragraphs",
        "chunks": chunks,
        "text_chars": text_chars,
        "index_s": load.result["wall_s"],
        "index_load": load.result,
        "files_added": report.added,
        "duckdb_bytes": duck,
        "lexical_bytes": lexical,
        "vectors_bytes": vectors,
        "duckdb_bytes_per_chunk": duck / chunks,
        "duckdb_embedding_bytes_per_chunk": 4 * status.dimension,
        "lexical_bytes_per_chunk": lexical / chunks,
        "text_chars_per_chunk": text_chars / chunks,
    }
    log(
        f"S: {chunks:,} chunks: DuckDB {duck / chunks:.0f} B/chunk ({4 * status.dimension} of them the embedding), "
        f"tantivy {lexical / chunks:.0f} B/chunk, vectors.faiss {vectors / chunks:.0f} B/chunk"
    )
    return out


# ---------------------------------------------------------------------------------------------------
# output
# ---------------------------------------------------------------------------------------------------
def print_tables(results: dict) -> None:
    rows = []
    for n, size in results["sizes"].items():
        for r in size["rows"]:
            d = r["default"]
            params = ", ".join(f"{k} {v}" for k, v in r["parameters"].items()) or "exact"
            rows.append(
                [
                    f"{int(n):,}",
                    r["kind"],
                    params,
                    r["build_s"],
                    r["index_bytes"] / 2**20,
                    r["bytes_per_vector"],
                    r["rss_mib_after_build"],
                    d["p50_ms_1t"],
                    d["p95_ms_1t"],
                    d["p50_ms_2t"],
                    d["p95_ms_2t"],
                    d["recall@10"],
                ]
            )
    table(
        f"Vector indexes (384-d, single queries, k = {results['args']['k']}, defaults)",
        [
            "n",
            "index",
            "parameters",
            "build s",
            "MiB",
            "B/vector",
            "RSS MiB",
            "p50 1t",
            "p95 1t",
            "p50 2t",
            "p95 2t",
            "recall@10",
        ],
        rows,
    )
    for n, size in results["sizes"].items():
        for r in size["rows"]:
            if not r.get("sweep"):
                continue
            keys = [k for k in ("nprobe", "efSearch", "k_factor") if k in r["sweep"][0]]
            table(
                f"{r['kind']} sweep, n = {int(n):,}",
                [*keys, "p50 1t", "p95 1t", "p50 2t", "p95 2t", "recall@10", "meets target"],
                [
                    [
                        *[s[k] for k in keys],
                        s["p50_ms_1t"],
                        s["p95_ms_1t"],
                        s["p50_ms_2t"],
                        s["p95_ms_2t"],
                        s["recall@10"],
                        "yes" if s["meets_target"] else "",
                    ]
                    for s in r["sweep"]
                ],
            )


def save(results: dict, args) -> None:
    results["load_at_save"] = os.getloadavg()
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=1, default=float))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="20k (all kinds) and 100k (ivfpq, streamed): checks it works")
    p.add_argument("--sizes", default=None, help="in-memory size, then streamed sizes (default 1000000,10000000)")
    p.add_argument("--kinds", default="flat,ivf,hnsw,ivfpq", help="kinds built at the in-memory size")
    p.add_argument("--k", type=int, default=CANDIDATES, help="results asked of the index per query (Engine.search's)")
    p.add_argument("--queries", type=int, default=300)
    p.add_argument("--base-texts", type=int, default=4000)
    p.add_argument("--noise", type=float, default=0.35, help="generator noise (bench/index_throughput.py's default)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-sweep", action="store_true")
    p.add_argument("--parts", default="VS", help="V: vector sizes, S: storage per chunk of a SQuAD index")
    p.add_argument("--storage-articles", type=int, default=None, help="SQuAD articles indexed for S (default all 48)")
    p.add_argument("--out", default=str(ROOT / "bench/results/vector_scale.json"))
    add_data_argument(p)
    args = p.parse_args(argv)
    sizes = args.sizes or ("20000,100000" if args.quick else "1000000,10000000")
    args.sizes = [int(s) for s in sizes.split(",")]
    args.kinds = [k.strip() for k in args.kinds.split(",") if k.strip()]
    if args.quick:
        args.queries = min(args.queries, 100)
        args.storage_articles = args.storage_articles or 2
    check_data(p, args.data, SQUAD)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from sixfold.indexer.embedding import load_embedder

    results: dict = {
        "machine": machine_info(),
        "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "target": TARGET,
        "load_at_start": os.getloadavg(),
        "sizes": {},
    }
    embedder = load_embedder(DEFAULT_EMBEDDER)
    workdir = Path(tempfile.mkdtemp(prefix="sixfold-vector-scale-"))
    started = time.perf_counter()
    try:
        if "S" in args.parts:
            results["storage"] = storage_per_chunk(args, embedder, workdir)
            save(results, args)
        if "V" in args.parts:
            base, queries = embed_inputs(args, embedder)
            in_memory_size(args, args.seed, base, queries, args.sizes[0], args.kinds, workdir, results)
            for n in args.sizes[1:]:
                streamed_size(args, args.seed, base, queries, n, workdir, results)
            print_tables(results)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    results["total_s"] = time.perf_counter() - started
    results["load_at_end"] = os.getloadavg()
    save(results, args)
    log(f"wrote {args.out} in {results['total_s'] / 60:.1f} min")
    return 0


if __name__ == "__main__":
    sys.exit(main())
