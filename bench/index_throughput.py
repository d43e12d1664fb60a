"""Indexing throughput and vector-search latency of sixfold, on this machine.

    HF_HUB_OFFLINE=1 .venv/bin/python bench/index_throughput.py            # full run (20-40 min on 2 cores)
    HF_HUB_OFFLINE=1 .venv/bin/python bench/index_throughput.py --quick    # a small run to check it works

A. Indexing throughput: the SQuAD v1.1 dev contexts (2,067 paragraphs, 48 articles) written as one .txt
   per article, indexed with ``Engine.open(tmp).index(folder)`` (walk, load, chunk, embed, store, commit),
   against raw ``SentenceTransformer.encode`` of exactly the chunk texts that were indexed (same model
   object, same batch size). Model load is excluded (the embedder is loaded and warmed up first).
B. Vector-index search latency: flat / IVF / HNSW as built by ``sixfold.indexer.vectors.build_index``, searched
   with ``sixfold.indexer.vectors.search_params`` (sixfold's nprobe / efSearch), at 10k / 100k / 1M synthetic
   384-d vectors derived from real embeddings; recall@10 of the approximate indexes against exact search,
   plus nprobe / efSearch sweeps.
C. End-to-end ``Engine.search`` latency (dense, hybrid, bm25) on the SQuAD index from A.

Results are printed as tables and written as JSON (``--out``) and as markdown tables (``--markdown``).
Everything also records how busy the machine was (load average and the CPU used by other processes
while each measurement ran), because a 2-core machine shared with other jobs gives noisy numbers.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import math
import os
import platform
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import faiss  # noqa: E402
import numpy as np  # noqa: E402

from sixfold.core.models import DEFAULT_EMBEDDER  # noqa: E402
from sixfold.engine import Engine  # noqa: E402
from sixfold.indexer import pipeline as pipeline_mod  # noqa: E402
from sixfold.indexer import store as store_mod  # noqa: E402
from sixfold.indexer import vectors as vec  # noqa: E402
from sixfold.indexer.chunking import Chunker  # noqa: E402
from sixfold.indexer.embedding import load_embedder  # noqa: E402
from sixfold.indexer.loaders import load_document  # noqa: E402
from sixfold.retriever.dense import dense_search  # noqa: E402
from sixfold.retriever.lexical import lexical_search  # noqa: E402

from benchdata import add_data_argument, check_data  # noqa: E402  (bench/ is sys.path[0])

# Relative to the data folder (--data).
SQUAD = "squad_v1.1_dev/dev-v1.1.json"
AG_NEWS = "ag_news/test.csv"
SCIFACT = "beir_scifact/corpus.jsonl"
SEARCH_K = 100  # what Engine.search asks the vector index for (retriever.search.CANDIDATES)
RECALL_AT = 10
CLK_TCK = os.sysconf("SC_CLK_TCK")


# ---------------------------------------------------------------------------------------------------
# machine, load and memory
# ---------------------------------------------------------------------------------------------------
def machine_info() -> dict:
    cpu = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem_kb = 0
    with contextlib.suppress(OSError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_kb = int(line.split()[1])
    import duckdb
    import sentence_transformers
    import torch

    commit = "unknown"
    with contextlib.suppress(Exception):
        commit = subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(ROOT), "status", "--porcelain", "--", "indexer", "retriever", "sixfold"],
            capture_output=True,
            text=True,
        ).stdout.strip()
        if dirty:
            diff = subprocess.run(
                ["git", "-C", str(ROOT), "diff", "HEAD", "--", "indexer", "retriever", "sixfold"], capture_output=True
            ).stdout
            import hashlib

            changed = sorted({line.split()[-1] for line in dirty.splitlines()})
            commit += f" + uncommitted changes in {', '.join(changed)} (diff sha1 {hashlib.sha1(diff).hexdigest()[:10]})"
    return {
        "cpu": cpu,
        "logical_cores": os.cpu_count(),
        "usable_cores": len(os.sched_getaffinity(0)),
        "ram_gib": round(mem_kb / 1024 / 1024, 1),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "faiss": faiss.__version__,
        "faiss_omp_threads": faiss.omp_get_max_threads(),
        "sentence_transformers": sentence_transformers.__version__,
        "numpy": np.__version__,
        "duckdb": duckdb.__version__,
        "kernel": platform.release(),
        "git_commit": commit,
        "date": dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
    }


def _cpu_jiffies() -> tuple[int, int]:
    """(busy, total) jiffies of the whole machine from /proc/stat."""
    fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    total = sum(fields[:8])
    return total - idle, total


class Load:
    """How busy the machine was during a block: load average and cores used by *other* processes."""

    def __enter__(self) -> Load:
        self.t0 = time.perf_counter()
        self.busy0, _ = _cpu_jiffies()
        times = os.times()
        self.self0 = times.user + times.system
        self.loadavg0 = os.getloadavg()[0]
        return self

    def __exit__(self, *exc) -> None:
        wall = max(time.perf_counter() - self.t0, 1e-9)
        busy1, _ = _cpu_jiffies()
        times = os.times()
        self_cpu = times.user + times.system - self.self0
        all_cpu = (busy1 - self.busy0) / CLK_TCK
        self.result = {
            "wall_s": wall,
            "self_cores": round(self_cpu / wall, 2),
            "other_cores": round(max(all_cpu - self_cpu, 0.0) / wall, 2),
            "loadavg_1m_start": round(self.loadavg0, 2),
            "loadavg_1m_end": round(os.getloadavg()[0], 2),
        }


def rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def maxrss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


class RssPeak:
    """Peak VmRSS during a block, sampled by a thread every ``interval`` seconds."""

    def __init__(self, interval: float = 0.02) -> None:
        self.interval = interval
        self._stop = threading.Event()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.peak = max(self.peak, rss_mib())

    def __enter__(self) -> RssPeak:
        self.start = rss_mib()
        self.peak = self.start
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.end = rss_mib()
        self.peak = max(self.peak, self.end)


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q)) if values else float("nan")


def summary(rates: list[float]) -> dict:
    """Best (highest) and median of throughputs."""
    return {"best": max(rates), "median": statistics.median(rates), "all": rates}


# ---------------------------------------------------------------------------------------------------
# printing
# ---------------------------------------------------------------------------------------------------
MARKDOWN: list[str] = []


def table(title: str, headers: list[str], rows: list[list], note: str | None = None) -> None:
    """Print a plain-text table and keep a markdown copy for --markdown."""
    cells = [[_fmt(c) for c in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) if cells else len(h) for i, h in enumerate(headers)]
    print(f"\n{title}")
    print("  " + "  ".join(h.rjust(w) if i else h.ljust(w) for i, (h, w) in enumerate(zip(headers, widths, strict=False))))
    print("  " + "  ".join("-" * w for w in widths))
    for r in cells:
        print("  " + "  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths, strict=False))))
    if note:
        print(f"  ({note})")
    MARKDOWN.append(f"**{title}**\n")
    MARKDOWN.append("| " + " | ".join(headers) + " |")
    MARKDOWN.append("|" + "|".join("---" if i == 0 else "---:" for i in range(len(headers))) + "|")
    for r in cells:
        MARKDOWN.append("| " + " | ".join(r) + " |")
    if note:
        MARKDOWN.append(f"\n_{note}_")
    MARKDOWN.append("")


def _fmt(value) -> str:
    if isinstance(value, float):
        if math.isnan(value):
            return "-"
        if abs(value) >= 100:
            return f"{value:,.0f}"
        if abs(value) >= 10:
            return f"{value:.1f}"
        return f"{value:.3f}" if abs(value) < 1 else f"{value:.2f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


# ---------------------------------------------------------------------------------------------------
# data
# ---------------------------------------------------------------------------------------------------
def squad_articles(data: Path) -> list[dict]:
    return json.loads((data / SQUAD).read_text())["data"]


def write_squad_corpus(articles: list[dict], folder: Path) -> dict:
    """One .txt per article, its paragraphs separated by blank lines."""
    folder.mkdir(parents=True, exist_ok=True)
    paragraphs = chars = 0
    for number, article in enumerate(articles):
        name = re.sub(r"[^A-Za-z0-9_.-]+", "_", article["title"])[:80]
        texts = [p["context"].strip() for p in article["paragraphs"]]
        body = "\n\n".join(texts) + "\n"
        (folder / f"{number:02d}_{name}.txt").write_text(body, encoding="utf-8")
        paragraphs += len(texts)
        chars += len(body)
    return {"files": len(articles), "paragraphs": paragraphs, "chars": chars}


def squad_questions(articles: list[dict]) -> list[str]:
    return [qa["question"].strip() for a in articles for p in a["paragraphs"] for qa in p["qas"]]


# ---------------------------------------------------------------------------------------------------
# A. indexing throughput
# ---------------------------------------------------------------------------------------------------
class Instrument:
    """Accumulate time spent in the pipeline's encode, Transaction.add_file and Transaction.commit.

    The wrappers call straight through to sixfold's own functions; they add a perf_counter pair per call.
    """

    def __init__(self, embedder) -> None:
        self.embedder = embedder
        self.times = {"encode_s": 0.0, "store_add_s": 0.0, "commit_s": 0.0}
        self.encode_calls = 0

    def _timed(self, key: str, fn):
        def wrapper(*args, **kwargs):
            t = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.times[key] += time.perf_counter() - t
                if key == "encode_s":
                    self.encode_calls += 1

        return wrapper

    def __enter__(self) -> Instrument:
        self._add = store_mod.Transaction.add_file
        self._commit = store_mod.Transaction.commit
        store_mod.Transaction.add_file = self._timed("store_add_s", self._add)
        store_mod.Transaction.commit = self._timed("commit_s", self._commit)
        self.embedder.encode = self._timed("encode_s", type(self.embedder).encode.__get__(self.embedder))
        return self

    def __exit__(self, *exc) -> None:
        store_mod.Transaction.add_file = self._add
        store_mod.Transaction.commit = self._commit
        del self.embedder.encode


def time_load_and_chunk(folder: Path, embedder) -> dict:
    """Load + chunk every file serially on the main thread (what the pipeline's loader thread does)."""
    chunker = Chunker(embedder.tokenizer, 200, 40)
    files = sorted(folder.glob("*.txt"))
    t = time.perf_counter()
    n = 0
    for path in files:
        n += len(chunker.split(load_document(path)))
    seconds = time.perf_counter() - t
    t = time.perf_counter()
    for path in files:
        pipeline_mod.file_sha256(path)
    hash_s = time.perf_counter() - t
    return {"load_chunk_s": seconds, "chunks": n, "sha256_s": hash_s}


def encode_raw(model, texts: list[str], batch_size: int) -> float:
    t = time.perf_counter()
    model.encode(texts, batch_size=batch_size, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False)
    return time.perf_counter() - t


def pipeline_groups(rows: list[tuple[str, str]]) -> list[list[str]]:
    """(path, chunk text) rows in the groups the pipeline embeds: whole files gathered until >= EMBED_GROUP chunks."""
    groups: list[list[str]] = []
    current: list[str] = []
    last_path = None
    for path, text in rows:
        if path != last_path and len(current) >= pipeline_mod.EMBED_GROUP:
            groups.append(current)
            current = []
        current.append(text)
        last_path = path
    if current:
        groups.append(current)
    return groups


def encode_grouped(model, rows: list[tuple[str, str]], batch_size: int) -> float:
    """Raw encode, but in the same calls the pipeline makes (``pipeline_groups``)."""
    groups = pipeline_groups(rows)
    t = time.perf_counter()
    for group in groups:
        model.encode(group, batch_size=batch_size, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False)
    return time.perf_counter() - t


def part_a(args, workdir: Path, corpus: Path, corpus_info: dict, embedder, label: str) -> dict:
    log(f"A{label}: indexing {corpus_info['files']} files / {corpus_info['paragraphs']} paragraphs, {args.repeats} repeats")
    runs = []
    raw = []
    grouped = []
    texts: list[str] = []
    rows: list[tuple[str, str]] = []
    index_dir = None
    for rep in range(args.repeats):
        index_dir = workdir / f"index{label}-{rep}"
        shutil.rmtree(index_dir, ignore_errors=True)
        engine = Engine.open(index_dir)
        with Load() as load, RssPeak() as rss, Instrument(embedder) as inst:
            t = time.perf_counter()
            report = engine.index(corpus, batch_size=args.batch_size)
            wall = time.perf_counter() - t
        other = wall - sum(inst.times.values())
        runs.append(
            {
                "wall_s": wall,
                "chunks": report.chunks_added,
                "files": report.added,
                "chunks_per_s": report.chunks_added / wall,
                **inst.times,
                "other_s": other,
                "encode_calls": inst.encode_calls,
                "rss_start_mib": rss.start,
                "rss_peak_mib": rss.peak,
                "rss_end_mib": rss.end,
                "load": load.result,
            }
        )
        if texts and report.chunks_added != len(texts):
            raise RuntimeError(f"run {rep} indexed {report.chunks_added} chunks, the first run {len(texts)}")
        log(
            f"  index rep {rep}: {report.chunks_added} chunks in {wall:.1f}s = {report.chunks_added / wall:.1f}/s "
            f"(other processes used {load.result['other_cores']} cores)"
        )
        if rep == 0:
            snapshot = engine.snapshot()
            rows = snapshot.con.execute("SELECT path, text FROM chunks ORDER BY chunk_id").fetchall()
            texts = [text for _path, text in rows]
            engine.close()
        if rep < args.repeats - 1 or label:
            shutil.rmtree(index_dir, ignore_errors=True)
        with Load() as load, RssPeak() as rss:
            seconds = encode_raw(embedder.model, texts, args.batch_size)
        raw.append({"wall_s": seconds, "chunks_per_s": len(texts) / seconds, "rss_peak_mib": rss.peak, "load": load.result})
        log(f"  raw encode rep {rep}: {len(texts) / seconds:.1f}/s (other processes used {load.result['other_cores']} cores)")
        if not args.no_grouped:
            with Load() as load:
                seconds = encode_grouped(embedder.model, rows, args.batch_size)
            grouped.append({"wall_s": seconds, "chunks_per_s": len(texts) / seconds, "load": load.result})
            log(f"  raw encode in pipeline-sized calls rep {rep}: {len(texts) / seconds:.1f}/s")
    with Load() as load:
        lc = time_load_and_chunk(corpus, embedder)
    lc["load"] = load.result
    tokens = [len(embedder.tokenizer(t, add_special_tokens=True)["input_ids"]) for t in texts]

    idx_rate = summary([r["chunks_per_s"] for r in runs])
    raw_rate = summary([r["chunks_per_s"] for r in raw])
    result = {
        "corpus": corpus_info,
        "chunks": len(texts),
        "tokens_per_chunk": {"mean": float(np.mean(tokens)), "p50": pct(tokens, 50), "max": int(max(tokens))},
        "batch_size": args.batch_size,
        "index_runs": runs,
        "raw_encode_runs": raw,
        "grouped_encode_runs": grouped,
        "index_chunks_per_s": idx_rate,
        "raw_chunks_per_s": raw_rate,
        "grouped_chunks_per_s": summary([r["chunks_per_s"] for r in grouped]) if grouped else None,
        "ratio_best": idx_rate["best"] / raw_rate["best"],
        "ratio_median": idx_rate["median"] / raw_rate["median"],
        # each repeat's index run over the raw encode that ran right after it (same load, minutes apart)
        "ratio_paired": [i["chunks_per_s"] / r["chunks_per_s"] for i, r in zip(runs, raw, strict=True)],
        "load_and_chunk_serial": lc,
        "index_dir": str(index_dir) if not label else None,
        "max_other_cores": max(r["load"]["other_cores"] for r in runs + raw),
    }
    rows_out = [
        ["Engine.index (load+chunk+embed+store+commit)", idx_rate["best"], idx_rate["median"], len(runs)],
        ["raw model.encode, all chunks in one call", raw_rate["best"], raw_rate["median"], len(raw)],
    ]
    if grouped:
        g = result["grouped_chunks_per_s"]
        rows_out.append(["raw model.encode, in the pipeline's calls (>=512)", g["best"], g["median"], len(grouped)])
    rows_out.append(["ratio Engine.index / raw encode", result["ratio_best"], result["ratio_median"], ""])
    paired = result["ratio_paired"]
    rows_out.append(
        ["ratio per repeat (index run / the raw encode after it)", max(paired), statistics.median(paired), len(paired)]
    )
    table(
        f"A{label}. Indexing throughput, SQuAD v1.1 dev ({len(texts):,} chunks, mean {result['tokens_per_chunk']['mean']:.0f} "
        f"tokens, batch {args.batch_size})",
        ["measurement", "best chunks/s", "median chunks/s", "runs"],
        rows_out,
        note=f"other processes used up to {result['max_other_cores']} of {os.cpu_count()} cores during these runs",
    )
    best = min(runs, key=lambda r: r["wall_s"])
    table(
        f"A{label}. Where the indexing time goes (fastest run, {best['wall_s']:.1f} s wall)",
        ["part", "seconds", "share"],
        [
            ["encode (embedder.encode inside the pipeline)", best["encode_s"], best["encode_s"] / best["wall_s"]],
            ["store: DuckDB insert + FAISS add + tantivy add", best["store_add_s"], best["store_add_s"] / best["wall_s"]],
            ["commit (checkpoint, write, fsync, rename)", best["commit_s"], best["commit_s"] / best["wall_s"]],
            ["other (walk+sha256, waiting on the loader thread)", best["other_s"], best["other_s"] / best["wall_s"]],
            [
                "load+chunk, measured alone (runs in a thread, overlapped)",
                lc["load_chunk_s"],
                lc["load_chunk_s"] / best["wall_s"],
            ],
        ],
    )
    table(
        f"A{label}. Memory (RSS, MiB)",
        ["step", "start", "peak", "end"],
        [[f"Engine.index run {i}", r["rss_start_mib"], r["rss_peak_mib"], r["rss_end_mib"]] for i, r in enumerate(runs)]
        + [["raw encode (peak)", float("nan"), max(r["rss_peak_mib"] for r in raw), float("nan")]],
        note=f"process peak so far (ru_maxrss): {maxrss_mib():.0f} MiB",
    )
    return result


# ---------------------------------------------------------------------------------------------------
# B. vector index latency and recall
# ---------------------------------------------------------------------------------------------------
def base_texts(articles: list[dict], n: int, rng: np.random.Generator, data: Path) -> list[str]:
    """Real passages of mixed length and domain: SQuAD sentences and paragraphs, AG News, SciFact abstracts."""
    sentences, paragraphs = [], []
    for a in articles:
        for p in a["paragraphs"]:
            paragraphs.append(p["context"])
            sentences.extend(s for s in re.split(r"(?<=[.!?])\s+", p["context"]) if len(s) > 40)
    news = []
    with contextlib.suppress(OSError):
        import csv

        with open(data / AG_NEWS, newline="", encoding="utf-8") as handle:
            news = [f"{row[1]}. {row[2]}".replace("\\n", " ") for row in csv.reader(handle) if len(row) >= 3]
    science = []
    with contextlib.suppress(OSError):
        with open(data / SCIFACT, encoding="utf-8") as handle:
            for line in handle:
                doc = json.loads(line)
                words = (doc.get("title", "") + ". " + doc.get("text", "")).split()
                science.append(" ".join(words[:150]))

    def take(pool: list[str], k: int) -> list[str]:
        k = min(k, len(pool))
        return [pool[i] for i in rng.choice(len(pool), k, replace=False)] if k else []

    parts = (
        take(sentences, int(n * 0.4)) + take(paragraphs, int(n * 0.2)) + take(news, int(n * 0.2)) + take(science, int(n * 0.2))
    )
    return parts


class Generator:
    """Vectors that look like sentence embeddings: mixtures of 3 real embeddings plus noise drawn from the
    real embeddings' own covariance (anisotropic, not iid Gaussian), L2-normalised."""

    def __init__(self, base: np.ndarray, seed: int, noise: float = 0.6) -> None:
        self.base = base.astype(np.float32)
        self.rng = np.random.default_rng(seed)
        centred = self.base - self.base.mean(0)
        cov = centred.T @ centred / max(len(centred) - 1, 1)
        eig, vecs = np.linalg.eigh(cov)
        self.noise_map = (vecs * np.sqrt(np.clip(eig, 0, None))).T.astype(np.float32)  # z @ noise_map ~ N(0, cov)
        self.noise = noise

    def make(self, n: int, block: int = 100_000) -> np.ndarray:
        out = np.empty((n, self.base.shape[1]), dtype=np.float32)
        for start in range(0, n, block):
            m = min(block, n - start)
            parents = self.rng.integers(0, len(self.base), size=(m, 3))
            w = np.stack([self.rng.uniform(0.5, 1.0, m), self.rng.uniform(0.0, 0.5, m), self.rng.uniform(0.0, 0.3, m)], 1)
            x = np.einsum("mk,mkd->md", w.astype(np.float32), self.base[parents])
            z = self.rng.standard_normal((m, self.base.shape[1]), dtype=np.float32)
            x += self.noise * (z @ self.noise_map)
            x /= np.linalg.norm(x, axis=1, keepdims=True)
            out[start : start + m] = x
        return out


def exact_topk(vectors: np.ndarray, queries: np.ndarray, k: int) -> tuple[np.ndarray, dict]:
    """Exact top-k ids (the ground truth) and cosine statistics of the queries' nearest vectors."""
    index = faiss.IndexFlatIP(vectors.shape[1])
    index.add(vectors)
    scores, ids = index.search(queries, min(k, len(vectors)))
    return ids, cos_stats(scores)


def cos_stats(scores: np.ndarray) -> dict:
    return {"top1_cos_median": float(np.median(scores[:, 0])), "top10_cos_median": float(np.median(scores[:, 9]))}


def latency(index: faiss.Index, queries: np.ndarray, k: int, params, warmup: int = 10) -> tuple[list[float], np.ndarray]:
    """Single-query latencies (ms) the way retriever.dense.dense_search calls FAISS, and the ids found."""
    ids_out = np.empty((len(queries), k), dtype=np.int64)
    for q in queries[:warmup]:
        if params is None:
            index.search(q.reshape(1, -1), k)
        else:
            index.search(q.reshape(1, -1), k, params=params)
    times = []
    for i, q in enumerate(queries):
        q = np.ascontiguousarray(q.reshape(1, -1))
        t = time.perf_counter()
        if params is None:
            _, ids = index.search(q, k)
        else:
            _, ids = index.search(q, k, params=params)
        times.append((time.perf_counter() - t) * 1000)
        ids_out[i] = ids[0]
    return times, ids_out


def recall(found: np.ndarray, truth: np.ndarray, at: int) -> float:
    hits = sum(len(set(f[:at].tolist()) & set(t[:at].tolist())) for f, t in zip(found, truth, strict=False))
    return hits / (len(truth) * at)


def build_ivf_sampled(n_train: int, ids: np.ndarray, vectors: np.ndarray, seed: int = 0) -> faiss.Index:
    """Like vec.build_index('ivf') (same nlist, nprobe, metric) but k-means trained on ``n_train`` vectors."""
    dim = vectors.shape[1]
    nlist = vec.ivf_nlist(len(ids))
    quantizer = faiss.IndexFlatIP(dim)
    index = faiss.IndexIVFFlat(quantizer, dim, nlist, faiss.METRIC_INNER_PRODUCT)
    rng = np.random.default_rng(seed)
    sample = vectors[rng.choice(len(vectors), min(n_train, len(vectors)), replace=False)]
    index.train(np.ascontiguousarray(sample))
    index.nprobe = vec.ivf_nprobe(nlist)
    index.own_fields = True
    quantizer.this.disown()
    index.add_with_ids(vectors, ids)
    return index


def ivf_cost(n: int) -> float:
    """Relative cost of vec.build_index('ivf'): k-means on min(n, 256 nlist) points x nlist, plus assigning n points."""
    nlist = vec.ivf_nlist(n)
    train = min(n, nlist * 256)
    return train * nlist * 25 + n * nlist


def hnsw_cost(n: int) -> float:
    return n * math.log(max(n, 2))


def measure_index(
    kind: str, label: str, index: faiss.Index, build_s: float, queries: np.ndarray, truth: np.ndarray, rss_delta: float, n: int
) -> dict:
    params = vec.search_params(index, None, SEARCH_K)
    times, found = latency(index, queries, SEARCH_K, params)
    row = {
        "kind": kind,
        "label": label,
        "n": n,
        "build_s": build_s,
        "p50_ms": pct(times, 50),
        "p95_ms": pct(times, 95),
        "mean_ms": float(np.mean(times)),
        f"recall@{RECALL_AT}": recall(found, truth, RECALL_AT),
        f"recall@{SEARCH_K}": recall(found, truth, SEARCH_K),
        "rss_delta_mib": rss_delta,
    }
    # The same search with FAISS limited to one OpenMP thread: a single query gains little from threads, and on a
    # busy machine a parallel region can wait a whole scheduler tick for its second thread.
    threads = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    try:
        times1, _ = latency(index, queries, SEARCH_K, params)
    finally:
        faiss.omp_set_num_threads(threads)
    row.update(p50_ms_1thread=pct(times1, 50), p95_ms_1thread=pct(times1, 95))
    if kind == "ivf":
        inner = faiss.extract_index_ivf(index)
        row.update(nlist=int(inner.nlist), nprobe=int(inner.nprobe))
    if kind == "hnsw":
        row.update(M=vec.HNSW_M, efConstruction=vec.HNSW_EF_CONSTRUCTION, efSearch=vec.HNSW_EF_SEARCH)
    log(
        f"  {label:<28} n={n:>9,}  build {build_s:7.1f}s  p50 {row['p50_ms']:7.3f} ms  p95 {row['p95_ms']:7.3f} ms  "
        f"recall@10 {row['recall@10']:.4f}"
    )
    return row


def sweep_point(index: faiss.Index, queries: np.ndarray, truth: np.ndarray, params) -> dict:
    """Latency (default FAISS threads and one thread) and recall of one search setting."""
    times, found = latency(index, queries, SEARCH_K, params, warmup=3)
    threads = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    try:
        times1, _ = latency(index, queries, SEARCH_K, params, warmup=3)
    finally:
        faiss.omp_set_num_threads(threads)
    return {
        "p50_ms": pct(times, 50),
        "p95_ms": pct(times, 95),
        "p50_ms_1thread": pct(times1, 50),
        "p95_ms_1thread": pct(times1, 95),
        "recall@10": recall(found, truth, 10),
        "recall@100": recall(found, truth, 100),
    }


def sweep_ivf(index: faiss.Index, queries: np.ndarray, truth: np.ndarray) -> list[dict]:
    inner = faiss.extract_index_ivf(index)
    values = sorted({v for v in (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024) if v <= inner.nlist} | {int(inner.nprobe)})
    return [
        {"nprobe": v, **sweep_point(index, queries, truth, faiss.SearchParametersIVF(nprobe=v)), "default": v == inner.nprobe}
        for v in values
    ]


def sweep_hnsw(index: faiss.Index, queries: np.ndarray, truth: np.ndarray) -> list[dict]:
    values = sorted({16, 32, 64, vec.HNSW_EF_SEARCH, 128, 192, 256, 512, 1024})
    return [
        {
            "efSearch": v,
            **sweep_point(index, queries, truth, faiss.SearchParametersHNSW(efSearch=v)),
            "default": v == vec.HNSW_EF_SEARCH,
        }
        for v in values
    ]


def ann_profile(vectors: np.ndarray, queries: np.ndarray) -> dict:
    """Cosine structure and IVF / HNSW recall@10 (sixfold's builds) of one vector set, for the realism calibration."""
    ids = np.arange(len(vectors), dtype=np.int64)
    truth, out = exact_topk(vectors, queries, SEARCH_K)
    flat = faiss.IndexFlatIP(vectors.shape[1])
    flat.add(vectors)
    scores, _ = flat.search(vectors[:500], 11)
    out.update(self_nn1_cos_median=float(np.median(scores[:, 1])), self_nn10_cos_median=float(np.median(scores[:, 10])))
    out["norm_of_mean_vector"] = float(np.linalg.norm(vectors.mean(0)))
    ivf = vec.build_index("ivf", vectors.shape[1], ids, vectors)
    out["nlist"] = int(faiss.extract_index_ivf(ivf).nlist)
    for nprobe in (4, 16, 64):
        _, found = ivf.search(queries, SEARCH_K, params=faiss.SearchParametersIVF(nprobe=nprobe))
        out[f"ivf_nprobe{nprobe}_recall@10"] = recall(found, truth, 10)
    hnsw = vec.build_index("hnsw", vectors.shape[1], ids, vectors)
    for ef in (16, 32, vec.HNSW_EF_SEARCH):
        _, found = hnsw.search(queries, SEARCH_K, params=faiss.SearchParametersHNSW(efSearch=ef))
        out[f"hnsw_ef{ef}_recall@10"] = recall(found, truth, 10)
    return out


def calibrate(args, articles: list[dict], embedder, queries: np.ndarray) -> dict:
    """Embed ~13k real texts; build synthetic vectors from 4,000 of them and compare with the other ~9k real ones."""
    rng = np.random.default_rng(args.seed + 3)
    texts = base_texts(articles, args.calibrate, rng, args.data)
    texts = [texts[i] for i in rng.permutation(len(texts))]
    log(f"B calibration: embedding {len(texts)} real texts")
    real = embedder.encode(texts, batch_size=args.batch_size)
    n_base = min(4000, len(real) // 3)
    base, held_out = real[:n_base], real[n_base:]
    profiles = {"real (held-out texts)": ann_profile(held_out, queries)}
    for noise in sorted({0.2, args.noise, 0.6}):
        synthetic = Generator(base, args.seed, noise=noise).make(len(held_out))
        profiles[f"synthetic, noise {noise}"] = ann_profile(synthetic, queries)
    keys = [
        "top1_cos_median",
        "top10_cos_median",
        "self_nn1_cos_median",
        "self_nn10_cos_median",
        "ivf_nprobe4_recall@10",
        "ivf_nprobe16_recall@10",
        "ivf_nprobe64_recall@10",
        "hnsw_ef16_recall@10",
        "hnsw_ef32_recall@10",
        f"hnsw_ef{vec.HNSW_EF_SEARCH}_recall@10",
    ]
    table(
        f"B. Realism calibration at n = {len(held_out):,}: real vs synthetic (made from {n_base:,} other texts)",
        [
            "vectors",
            "q top-1 cos",
            "q top-10th cos",
            "NN1 cos",
            "NN10 cos",
            "ivf np4",
            "ivf np16",
            "ivf np64",
            "hnsw ef16",
            "hnsw ef32",
            f"hnsw ef{vec.HNSW_EF_SEARCH}",
        ],
        [[name, *[p[k] for k in keys]] for name, p in profiles.items()],
        note="q = SQuAD questions; NN = a vector's nearest other vectors; ivf npX / hnsw efX = recall@10 at nprobe / efSearch X",
    )
    return {"n": len(held_out), "profiles": profiles}


def part_b(args, articles: list[dict], embedder, real_ref: dict | None) -> dict:
    rng = np.random.default_rng(args.seed)
    texts = base_texts(articles, args.base_texts, rng, args.data)
    questions = squad_questions(articles)
    qsel = [questions[i] for i in rng.choice(len(questions), args.queries, replace=False)]
    log(f"B: embedding {len(texts)} real base texts and {len(qsel)} SQuAD questions")
    t = time.perf_counter()
    base = embedder.encode(texts, batch_size=args.batch_size)
    queries = embedder.encode(qsel, batch_size=args.batch_size)
    embed_s = time.perf_counter() - t
    gen = Generator(base, args.seed, noise=args.noise)
    max_n = max(args.sizes)
    t = time.perf_counter()
    data = gen.make(max_n)
    gen_s = time.perf_counter() - t
    log(f"B: generated {max_n:,} vectors in {gen_s:.1f}s (RSS {rss_mib():.0f} MiB)")
    realism = {
        "base_texts": len(texts),
        "queries": len(qsel),
        "embed_s": embed_s,
        "generate_s": gen_s,
        "noise": args.noise,
        "synthetic": {},
        "real_squad_chunks": real_ref,
    }
    realism["median_cos_to_closest_base"] = float(np.median((data[:2000] @ base.T).max(1)))
    mean_vec = data[:100_000].mean(0)
    realism["norm_of_mean_vector"] = {
        "synthetic": float(np.linalg.norm(mean_vec)),
        "real_base": float(np.linalg.norm(base.mean(0))),
    }
    if real_ref and "norm_of_mean_vector" in real_ref:
        realism["norm_of_mean_vector"]["real_squad_chunks"] = real_ref["norm_of_mean_vector"]

    results = {"realism": realism, "sizes": {}}
    if args.calibrate:
        results["calibration"] = calibrate(args, articles, embedder, queries)
    for n in args.sizes:
        log(f"B: n = {n:,}")
        vectors = data[:n]
        ids = np.arange(n, dtype=np.int64)
        truth, realism["synthetic"][str(n)] = exact_topk(vectors, queries, SEARCH_K)
        rows = []
        sweeps = {}
        cost_rate = {}
        for kind in args.kinds:
            label = kind
            if kind == "ivf" and n < 2 * 39:
                continue
            est_s = None
            if kind == "ivf" and "ivf" in cost_rate:
                est_s = cost_rate["ivf"] * ivf_cost(n)
            if kind == "hnsw" and "hnsw" in cost_rate:
                est_s = cost_rate["hnsw"] * hnsw_cost(n)
            skip = est_s is not None and est_s > args.max_build_min * 60
            if skip:
                note = (
                    f"skipped: estimated build {est_s / 60:.0f} min > --max-build-min {args.max_build_min} "
                    f"(extrapolated from the build rate at the previous size)"
                )
                log(f"  {kind}: {note}")
                rows.append({"kind": kind, "label": kind, "n": n, "skipped": note, "estimated_build_s": est_s})
                if kind == "ivf" and args.ivf_sample_fallback:
                    n_train = args.ivf_train_per_list * vec.ivf_nlist(n)
                    label = f"ivf (train {args.ivf_train_per_list}/list)"
                    with RssPeak() as rss:
                        t = time.perf_counter()
                        index = build_ivf_sampled(n_train, ids, vectors)
                        build_s = time.perf_counter() - t
                    row = measure_index("ivf", label, index, build_s, queries, truth, rss.end - rss.start, n)
                    row["train_points"] = n_train
                    rows.append(row)
                    if n >= args.sweep_from:
                        sweeps[label] = sweep_ivf(index, queries, truth)
                    del index
                continue
            with RssPeak() as rss:
                t = time.perf_counter()
                index = vec.build_index(kind, vectors.shape[1], ids, vectors)
                build_s = time.perf_counter() - t
            if kind == "ivf":
                cost_rate["ivf"] = build_s / ivf_cost(n)
            if kind == "hnsw":
                cost_rate["hnsw"] = build_s / hnsw_cost(n)
            row = measure_index(kind, label, index, build_s, queries, truth, rss.end - rss.start, n)
            if kind == "ivf":
                row["train_points"] = min(n, row["nlist"] * 256)
            rows.append(row)
            if n >= args.sweep_from and kind == "ivf":
                sweeps["ivf"] = sweep_ivf(index, queries, truth)
            if n >= args.sweep_from and kind == "hnsw":
                sweeps["hnsw"] = sweep_hnsw(index, queries, truth)
            del index
            # the sampled-training variant beside the real build, to show what training on fewer points costs in recall
            if kind == "ivf" and args.ivf_sample_fallback and n in args.ivf_compare_sizes:
                n_train = args.ivf_compare_per_list * vec.ivf_nlist(n)
                if n_train < n:
                    label = f"ivf (train {args.ivf_compare_per_list}/list)"
                    t = time.perf_counter()
                    index = build_ivf_sampled(n_train, ids, vectors)
                    build_s = time.perf_counter() - t
                    row = measure_index("ivf", label, index, build_s, queries, truth, float("nan"), n)
                    row["train_points"] = n_train
                    rows.append(row)
                    del index
        results["sizes"][str(n)] = {"rows": rows, "sweeps": sweeps, "cost_rate": cost_rate}
        for kind, rate in cost_rate.items():
            for later in args.sizes:
                if later > n:
                    est = rate * (ivf_cost(later) if kind == "ivf" else hnsw_cost(later))
                    results["sizes"][str(n)].setdefault("estimates_s", {})[f"{kind}@{later}"] = est
        print_b_size(n, rows, sweeps)
    return results


def print_b_size(n: int, rows: list[dict], sweeps: dict) -> None:
    out = []
    for r in rows:
        if "skipped" in r:
            out.append([r["label"], "", f"est {r['estimated_build_s'] / 60:.0f} min", "skipped", "", "", "", "", ""])
            continue
        params = (
            f"nlist {r['nlist']}, nprobe {r['nprobe']}"
            if r["kind"] == "ivf"
            else (f"M {r['M']}, efC {r['efConstruction']}, efS {r['efSearch']}" if r["kind"] == "hnsw" else "exact")
        )
        out.append(
            [
                r["label"],
                params,
                r["build_s"],
                r["p50_ms"],
                r["p95_ms"],
                r["p50_ms_1thread"],
                r["p95_ms_1thread"],
                r["recall@10"],
                r["recall@100"],
            ]
        )
    table(
        f"B. Vector index, n = {n:,} (384-d, single queries, k = {SEARCH_K} as Engine.search asks)",
        ["index", "parameters", "build s", "p50 ms", "p95 ms", "p50 ms 1 thr", "p95 ms 1 thr", "recall@10", "recall@100"],
        out,
    )
    for name, sweep in sweeps.items():
        key = "nprobe" if name.startswith("ivf") else "efSearch"
        table(
            f"B. {name} {key} sweep, n = {n:,}",
            [key, "p50 ms", "p95 ms", "p50 ms 1 thr", "p95 ms 1 thr", "recall@10", "recall@100"],
            [
                [
                    f"{r[key]}{' (default)' if r['default'] else ''}",
                    r["p50_ms"],
                    r["p95_ms"],
                    r["p50_ms_1thread"],
                    r["p95_ms_1thread"],
                    r["recall@10"],
                    r["recall@100"],
                ]
                for r in sweep
            ],
        )


# ---------------------------------------------------------------------------------------------------
# C. end-to-end search
# ---------------------------------------------------------------------------------------------------
def part_c(args, index_dir: Path, articles: list[dict], embedder) -> dict:
    rng = np.random.default_rng(args.seed + 1)
    questions = squad_questions(articles)
    qsel = [questions[i] for i in rng.choice(len(questions), args.search_queries, replace=False)]
    engine = Engine.open(index_dir)
    snapshot = engine.snapshot()
    chunks = snapshot.count_chunks()
    kind = vec.index_kind(snapshot.vectors)
    out = {"chunks": chunks, "vector_index": kind, "queries": len(qsel), "modes": {}}
    for q in qsel[:5]:  # warm up: lexical index open, FAISS read, first torch call
        for mode in ("dense", "hybrid", "bm25"):
            engine.search(q, k=10, mode=mode)
    enc = []
    for q in qsel:
        t = time.perf_counter()
        embedder.encode([q])
        enc.append((time.perf_counter() - t) * 1000)
    out["query_encode"] = {"p50_ms": pct(enc, 50), "p95_ms": pct(enc, 95), "mean_ms": float(np.mean(enc))}
    # the steps of a dense search, each timed alone on the same questions
    vectors = embedder.encode(qsel)
    steps: dict[str, list[float]] = {
        "dense_search (FAISS, k=100)": [],
        "dense_search, FAISS 1 thread": [],
        "lexical_search (tantivy, k=100)": [],
        "snapshot.chunks (10 rows)": [],
    }
    threads = faiss.omp_get_max_threads()
    for q, v in zip(qsel, vectors, strict=True):
        t = time.perf_counter()
        found = dense_search(snapshot, v, 100)
        steps["dense_search (FAISS, k=100)"].append((time.perf_counter() - t) * 1000)
        faiss.omp_set_num_threads(1)
        try:
            t = time.perf_counter()
            dense_search(snapshot, v, 100)
            steps["dense_search, FAISS 1 thread"].append((time.perf_counter() - t) * 1000)
        finally:
            faiss.omp_set_num_threads(threads)
        t = time.perf_counter()
        lexical_search(snapshot, q, 100)
        steps["lexical_search (tantivy, k=100)"].append((time.perf_counter() - t) * 1000)
        t = time.perf_counter()
        snapshot.chunks([cid for cid, _ in found[:10]])
        steps["snapshot.chunks (10 rows)"].append((time.perf_counter() - t) * 1000)
    # Query encode followed by the FAISS search, back to back, with FAISS on its default threads and on one: torch
    # and faiss-cpu each bring their own OpenMP runtime, and FAISS's workers spinning after a search take the cores
    # torch's next encode needs.
    for faiss_threads in (threads, 1):
        name = f"encode + dense_search, FAISS {faiss_threads} thread{'s' if faiss_threads > 1 else ''}"
        steps[name] = []
        faiss.omp_set_num_threads(faiss_threads)
        try:
            for q in qsel:
                t = time.perf_counter()
                dense_search(snapshot, embedder.encode([q])[0], 100)
                steps[name].append((time.perf_counter() - t) * 1000)
        finally:
            faiss.omp_set_num_threads(threads)
    out["steps"] = {name: {"p50_ms": pct(v, 50), "p95_ms": pct(v, 95), "mean_ms": float(np.mean(v))} for name, v in steps.items()}
    rows = []
    for mode in ("dense", "hybrid", "bm25"):
        with Load() as load:
            times = []
            for q in qsel:
                t = time.perf_counter()
                engine.search(q, k=10, mode=mode)
                times.append((time.perf_counter() - t) * 1000)
        out["modes"][mode] = {
            "p50_ms": pct(times, 50),
            "p95_ms": pct(times, 95),
            "mean_ms": float(np.mean(times)),
            "load": load.result,
        }
        rows.append([mode, pct(times, 50), pct(times, 95), float(np.mean(times)), load.result["other_cores"]])
    rows.append(["query encode alone", out["query_encode"]["p50_ms"], out["query_encode"]["p95_ms"], float(np.mean(enc)), ""])
    for name, v in out["steps"].items():
        rows.append([name if name.startswith("encode") else f"{name} alone", v["p50_ms"], v["p95_ms"], v["mean_ms"], ""])
    # The same searches with other thread settings (not sixfold's): torch on one thread (a one-sentence encode is
    # too small to gain from two, and loses a lot when the other core is busy), FAISS on one thread, and both.
    import torch

    torch_threads = torch.get_num_threads()
    for variant, (t_threads, f_threads) in {
        "torch 1 thread": (1, threads),
        "FAISS 1 thread": (torch_threads, 1),
        "torch 1 + FAISS 1 thread": (1, 1),
    }.items():
        torch.set_num_threads(t_threads)
        faiss.omp_set_num_threads(f_threads)
        try:
            for mode in ("dense", "hybrid"):
                with Load() as load:
                    times = []
                    for q in qsel:
                        t = time.perf_counter()
                        engine.search(q, k=10, mode=mode)
                        times.append((time.perf_counter() - t) * 1000)
                key = f"{mode}, {variant}"
                out["modes"][key] = {
                    "p50_ms": pct(times, 50),
                    "p95_ms": pct(times, 95),
                    "mean_ms": float(np.mean(times)),
                    "load": load.result,
                }
                rows.append([key, pct(times, 50), pct(times, 95), float(np.mean(times)), load.result["other_cores"]])
        finally:
            torch.set_num_threads(torch_threads)
            faiss.omp_set_num_threads(threads)
    engine.close()
    table(
        f"C. Engine.search end to end, SQuAD index ({chunks:,} chunks, {kind} vectors), {len(qsel)} questions, k = 10",
        ["mode", "p50 ms", "p95 ms", "mean ms", "other procs' cores"],
        rows,
    )
    return out


def real_reference(index_dir: Path, articles: list[dict], embedder, n_queries: int, seed: int) -> dict:
    """Cosine statistics of real questions against the real SQuAD chunk embeddings (for the realism check)."""
    engine = Engine.open(index_dir)
    # Read the embeddings directly: Snapshot.embeddings() calls DuckDB's fetch_arrow_table, which duckdb 2.x
    # no longer has (see docs/benchmarks.md).
    con = engine.snapshot().con
    rel = con.sql("SELECT embedding FROM chunks ORDER BY chunk_id")
    table_ = rel.to_arrow_table() if hasattr(rel, "to_arrow_table") else rel.arrow()
    dim = engine.snapshot().settings.dim
    vectors = np.ascontiguousarray(
        table_.column("embedding").combine_chunks().values.to_numpy(zero_copy_only=False).reshape(-1, dim), dtype=np.float32
    )
    engine.close()
    rng = np.random.default_rng(seed + 2)
    questions = squad_questions(articles)
    qsel = [questions[i] for i in rng.choice(len(questions), min(n_queries, len(questions)), replace=False)]
    queries = embedder.encode(qsel)
    _, ref = exact_topk(vectors, queries, 10)
    ref["n"] = len(vectors)
    ref["norm_of_mean_vector"] = float(np.linalg.norm(vectors.mean(0)))
    return ref


# ---------------------------------------------------------------------------------------------------
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="small, fast run (a few articles, 2k/10k vectors)")
    p.add_argument("--out", default=str(ROOT / "bench/results/index_throughput.json"), help="JSON results file")
    p.add_argument("--markdown", default=None, help="also write the tables as markdown here (default: --out with .md)")
    p.add_argument("--parts", default="ABC", help="which parts to run (subset of ABC)")
    p.add_argument("--articles", type=int, default=None, help="SQuAD articles to index in A (default all 48; quick 4)")
    p.add_argument("--repeats", type=int, default=None, help="repeats of each A measurement (default 3; quick 2)")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--no-grouped", action="store_true", help="skip the raw encode in pipeline-sized calls")
    p.add_argument(
        "--a-again",
        choices=("auto", "always", "never"),
        default="auto",
        help="run A once more at the end: always, never, or when other processes used > 0.5 cores during A",
    )
    p.add_argument("--sizes", default=None, help="vector counts for B (default 10000,100000,1000000; quick 2000,10000)")
    p.add_argument("--kinds", default="flat,ivf,hnsw")
    p.add_argument("--queries", type=int, default=None, help="single queries per B measurement (default 300; quick 100)")
    p.add_argument("--base-texts", type=int, default=None, help="real texts embedded as B's generator base (default 4000)")
    p.add_argument(
        "--calibrate",
        type=int,
        default=0,
        metavar="N",
        help="embed N real texts and compare synthetic vs real vectors (recall, cosines); e.g. 13000",
    )
    p.add_argument("--noise", type=float, default=0.35, help="B generator noise scale (x the real covariance)")
    p.add_argument("--max-build-min", type=float, default=10.0, help="skip a B build whose estimate exceeds this")
    p.add_argument(
        "--ivf-train-per-list",
        type=int,
        default=64,
        help="training points per list for the sampled-training IVF variant (comparison / fallback)",
    )
    p.add_argument(
        "--ivf-compare-per-list",
        type=int,
        default=39,
        help="training points per list of the IVF built beside the real one (--ivf-compare-sizes), to show the recall cost",
    )
    p.add_argument(
        "--ivf-compare-sizes",
        default=None,
        help="sizes at which the sampled-training IVF is built beside the real one (default: those from 10k to 100k)",
    )
    p.add_argument(
        "--no-ivf-sample-fallback",
        dest="ivf_sample_fallback",
        action="store_false",
        help="when the real IVF build is skipped, do not build the sampled-training variant instead",
    )
    p.add_argument("--sweep-from", type=int, default=None, help="run nprobe/efSearch sweeps from this size up (default 100000)")
    p.add_argument("--search-queries", type=int, default=None, help="questions for C (default 200; quick 30)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--keep", action="store_true", help="keep the temporary folder")
    add_data_argument(p)
    args = p.parse_args(argv)
    quick = args.quick
    args.articles = args.articles or (4 if quick else None)
    args.repeats = args.repeats or (2 if quick else 3)
    args.sizes = [int(s) for s in (args.sizes or ("2000,10000" if quick else "10000,100000,1000000")).split(",")]
    args.kinds = [k.strip() for k in args.kinds.split(",") if k.strip()]
    args.queries = args.queries or (100 if quick else 300)
    args.base_texts = args.base_texts or (1000 if quick else 4000)
    args.sweep_from = args.sweep_from if args.sweep_from is not None else (2000 if quick else 100_000)
    args.search_queries = args.search_queries or (30 if quick else 200)
    if args.ivf_compare_sizes is not None:
        args.ivf_compare_sizes = [int(x) for x in args.ivf_compare_sizes.split(",") if x.strip()]
    else:
        args.ivf_compare_sizes = [n for n in args.sizes if 10_000 <= n <= 100_000] if not quick else args.sizes
    args.parts = args.parts.upper()
    check_data(p, args.data, SQUAD)
    return args


def save(results: dict, args: argparse.Namespace, started: float) -> None:
    """Write the JSON and markdown now (called after every part, so a later failure keeps what was measured)."""
    results["load_at_end"] = os.getloadavg()
    results["process_peak_rss_mib"] = maxrss_mib()
    results["total_s"] = time.perf_counter() - started
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=1, default=float))
    md = Path(args.markdown) if args.markdown else out.with_suffix(".md")
    md.write_text("\n".join(MARKDOWN) + "\n")


def guarded(results: dict, name: str, fn, *fn_args):
    """Run one part; a failure is recorded in the results (and printed) instead of losing the other parts."""
    try:
        return fn(*fn_args)
    except Exception as exc:  # a benchmark run should report what failed, not stop
        import traceback

        text = traceback.format_exc()
        log(f"{name} FAILED: {type(exc).__name__}: {exc}")
        print(text, file=sys.stderr)
        results.setdefault("errors", {})[name] = {"error": f"{type(exc).__name__}: {exc}", "traceback": text}
        MARKDOWN.append(f"**{name} failed**: `{type(exc).__name__}: {str(exc)[:300]}`\n")
        return None


def realism_table(results: dict, real_ref: dict | None) -> None:
    r = results["B"]["realism"]
    rows = [[f"synthetic n = {int(n):,}", s["top1_cos_median"], s["top10_cos_median"]] for n, s in r["synthetic"].items()]
    if real_ref:
        rows.append([f"real SQuAD chunks n = {real_ref['n']:,}", real_ref["top1_cos_median"], real_ref["top10_cos_median"]])
    norms = ", ".join(f"{k} {v:.2f}" for k, v in r["norm_of_mean_vector"].items())
    table(
        "B. Realism check: cosine of SQuAD questions to their nearest vectors (median over queries)",
        ["vectors", "top-1 cos", "top-10th cos"],
        rows,
        note=f"synthetic vectors: median cos to the closest of the {r['base_texts']} real base embeddings "
        f"{r['median_cos_to_closest_base']:.2f}; norm of the mean vector: {norms}",
    )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    machine = machine_info()
    print("sixfold index/search benchmark")
    for key, value in machine.items():
        print(f"  {key:<22} {value}")
    table("Machine", ["item", "value"], [[k, str(v)] for k, v in machine.items()])
    results: dict = {
        "machine": machine,
        "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "load_at_start": os.getloadavg(),
    }

    tmp = Path(tempfile.mkdtemp(prefix="sixfold-bench-"))
    try:
        t = time.perf_counter()
        embedder = load_embedder(DEFAULT_EMBEDDER)
        embedder.encode(["warm up the model"] * 64)
        results["model"] = {
            "name": embedder.name,
            "dim": embedder.dim,
            "device": embedder.device,
            "load_s": time.perf_counter() - t,
        }
        log(
            f"model {embedder.name} ({embedder.dim}-d, {embedder.device}) loaded in {results['model']['load_s']:.1f}s, "
            f"RSS {rss_mib():.0f} MiB"
        )
        articles = squad_articles(args.data)
        used = articles[: args.articles] if args.articles else articles
        corpus = tmp / "corpus"
        corpus_info = write_squad_corpus(used, corpus)
        index_dir = None
        real_ref = None
        if "A" in args.parts:
            results["A"] = guarded(results, "A", part_a, args, tmp, corpus, corpus_info, embedder, "")
            save(results, args, started)
            if results["A"]:
                index_dir = Path(results["A"]["index_dir"])
        if index_dir is None and ("B" in args.parts or "C" in args.parts):
            index_dir = tmp / "index-c"
            guarded(results, "index for B/C", lambda: Engine.open(index_dir).index(corpus))
        if index_dir is not None and (index_dir / "sixfold-index.json").exists():
            real_ref = guarded(results, "real reference", real_reference, index_dir, used, embedder, args.queries, args.seed)
            if "C" in args.parts:
                results["C"] = guarded(results, "C", part_c, args, index_dir, used, embedder)
                save(results, args, started)
        if "B" in args.parts:
            results["B"] = guarded(results, "B", part_b, args, articles, embedder, real_ref)
            if results["B"]:
                realism_table(results, real_ref)
            save(results, args, started)
        first = results.get("A")
        if first and (args.a_again == "always" or (args.a_again == "auto" and first["max_other_cores"] > 0.5)):
            log("A again, at the end (the first A ran with other processes busy)")
            results["A_again"] = guarded(results, "A (again)", part_a, args, tmp, corpus, corpus_info, embedder, " (again)")
    finally:
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
    save(results, args, started)
    print(f"\nprocess peak RSS (ru_maxrss): {results['process_peak_rss_mib']:.0f} MiB; total {results['total_s'] / 60:.1f} min")
    print(f"wrote {args.out}" + (f"; errors in: {', '.join(results['errors'])}" if results.get("errors") else ""))
    return 1 if results.get("errors") else 0


if __name__ == "__main__":
    sys.exit(main())
