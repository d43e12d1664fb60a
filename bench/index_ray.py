"""``sixfold index --ray auto`` against a local run and the honest limit, raw encode of the same chunks (issue 16).

    HF_HUB_OFFLINE=1 .venv/bin/python bench/index_ray.py             # SQuAD dev corpus, 2 repeats
    HF_HUB_OFFLINE=1 .venv/bin/python bench/index_ray.py --quick     # 12 articles, 1 repeat: checks it works

The corpus is bench/index_throughput.py's part A: the SQuAD v1.1 dev contexts, one .txt per article (48 files,
2,067 paragraphs). The embedder (all-MiniLM-L6-v2) is loaded and warmed up once in this process. A local Ray cluster
is started once with ``--cpus`` CPUs (``ray.init(num_cpus=...)``, not timed), as ``--ray auto`` starts one; then per
repeat, each into a fresh index:

- ``local``: ``Engine.index(folder)`` (the default loader: the thread on 2 cores);
- ``ray`` / ``ray-actors N``: ``Engine.index(folder, ray="auto", ray_actors=N)``, which finds the running cluster:
  loader tasks and an actor pool that loads its own copy of the model (that start-up is inside the time: each run is
  a new Ray Data pipeline, as each ``sixfold index --ray`` is);
- raw encode: ``embedder.encode`` of exactly the chunk texts indexed, in the local pipeline's calls, on this process.

Every run's chunks are checked to be the local run's (path and text, in chunk-id order). The machine's load (cores
used by other processes, as in index_throughput.py) is recorded per measurement: this is a shared 2-core box.
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

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

MODEL = "all-MiniLM-L6-v2"


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


class RayCpu:
    """CPU seconds used by this process's descendants (the local Ray cluster: raylet, loader tasks, actors) during a
    block, sampled every 0.5 s so that actors that exit at the end of a run are counted; subtracted from the
    'other processes' of ``Load``, which would count them as someone else's load."""

    def __init__(self) -> None:
        import threading

        import psutil

        self.me = psutil.Process()
        self.seen: dict[int, float] = {}
        self.base: dict[int, float] = self._sample()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self) -> dict[int, float]:
        import psutil

        out = {}
        for child in self.me.children(recursive=True):
            try:
                times = child.cpu_times()
                out[child.pid] = times.user + times.system
            except psutil.Error:
                pass
        return out

    def _run(self) -> None:
        while not self.stop.wait(0.5):
            for pid, cpu in self._sample().items():
                self.seen[pid] = max(cpu, self.seen.get(pid, 0.0))

    def __enter__(self) -> RayCpu:
        self.started = time.perf_counter()
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.thread.join()
        for pid, cpu in self._sample().items():
            self.seen[pid] = max(cpu, self.seen.get(pid, 0.0))
        used = sum(cpu - self.base.get(pid, 0.0) for pid, cpu in self.seen.items())
        self.cores = round(used / max(time.perf_counter() - self.started, 1e-9), 2)


def run_index(engine_cls, folder: Path, index: Path, batch_size: int, **options) -> tuple[dict, list]:
    engine = engine_cls.open(index, model=MODEL)
    started = time.perf_counter()
    report = engine.index(folder, batch_size=batch_size, **options)
    wall = time.perf_counter() - started
    rows = engine.snapshot().con.execute("SELECT path, text FROM chunks ORDER BY chunk_id").fetchall()
    engine.close()
    shutil.rmtree(index, ignore_errors=True)
    return {
        "wall_s": wall,
        "files": report.added,
        "chunks": report.chunks_added,
        "chunks_per_s": report.chunks_added / wall,
    }, rows


def main(argv: list[str] | None = None) -> int:
    from benchdata import add_data_argument, check_data  # bench/ is sys.path[0]

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_data_argument(parser)
    parser.add_argument("--cpus", type=int, default=2, help="CPUs of the local Ray cluster (default 2)")
    parser.add_argument("--actors", default="default,2", help="comma-separated --ray-actors values ('default': none given)")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--articles", type=int, default=48, help="SQuAD dev articles written as files (default: all 48)")
    parser.add_argument("--quick", action="store_true", help="12 articles, 1 repeat")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "index_ray.json")
    args = parser.parse_args(argv)
    if args.quick:
        args.repeats, args.articles = 1, 12
    import index_throughput as it  # Load, machine_info, the SQuAD corpus writer, pipeline_groups
    from index_workers import raw_encode_repeat, summarise

    data = check_data(parser, args.data, it.SQUAD)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    import logging

    import ray

    from sixfold.engine import Engine
    from sixfold.indexer.embedding import load_embedder

    embedder = load_embedder(MODEL)
    embedder.encode(["warm up the model"] * 64, batch_size=args.batch_size)
    variants: list[tuple[str, dict]] = [("local", {})]
    for actors in [a.strip() for a in args.actors.split(",") if a.strip()]:
        if actors == "default":
            variants.append(("ray", {"ray": "auto"}))
        else:
            variants.append((f"ray-actors {int(actors)}", {"ray": "auto", "ray_actors": int(actors)}))
    with tempfile.TemporaryDirectory(prefix="sixfold-ray-bench-") as tmp:
        workdir = Path(tmp)
        articles = it.squad_articles(data)
        corpus = it.write_squad_corpus(articles[: args.articles], workdir / "squad")
        folder = workdir / "squad"
        log(f"corpus: {corpus}")
        started = time.perf_counter()
        ray.init(num_cpus=args.cpus, include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR)
        cluster_start = time.perf_counter() - started
        log(f"local Ray cluster with {args.cpus} CPUs started in {cluster_start:.1f} s")
        reference: list = []
        repeats = []
        try:
            for rep in range(args.repeats):
                runs = {}
                for name, options in variants:
                    with it.Load() as load, RayCpu() as cluster_cpu:
                        run, rows = run_index(Engine, folder, workdir / f"idx-{rep}", args.batch_size, **options)
                    load.result["ray_cores"] = cluster_cpu.cores  # the cluster's processes, not someone else's load
                    load.result["other_cores"] = round(max(0.0, load.result["other_cores"] - cluster_cpu.cores), 2)
                    if reference and rows != reference:
                        raise SystemExit(f"{name}: other chunks than the local run's")
                    reference = reference or rows
                    run["load"] = load.result
                    runs[name] = run
                    log(
                        f"rep {rep} {name}: {run['chunks']} chunks in {run['wall_s']:.1f} s = {run['chunks_per_s']:.1f}/s "
                        f"(Ray's processes: {load.result['ray_cores']} cores, others: {load.result['other_cores']} cores)"
                    )
                raw = raw_encode_repeat(embedder, reference, args.batch_size, runs, it)
                log(f"rep {rep} raw encode: {len(reference)} chunks in {raw['wall_s']:.1f} s = {raw['chunks_per_s']:.1f}/s")
                repeats.append({"index": runs, "raw_encode": raw})
        finally:
            ray.shutdown()
    summary = summarise(repeats, {name: name for name, _ in variants})
    head = ["run", "chunks/s (median)", "of raw encode", "each repeat", "wall s"]
    lines = [" | ".join(head), " | ".join("---" for _ in head)]
    lines.append(f"raw encode | {summary['raw_chunks_per_s_median']:.1f} | 1.00 | | ")
    for name, _ in variants:
        s = summary[name]
        each = ", ".join(f"{x:.2f}" for x in s["ratio_to_raw_each"])
        walls = ", ".join(f"{x:.1f}" for x in s["wall_s_each"])
        lines.append(f"{name} | {s['chunks_per_s_median']:.1f} | {s['ratio_to_raw_median']:.2f} | {each} | {walls}")
    print("\n".join(f"| {line} |" for line in lines))
    print(f"({len(reference)} chunks, {corpus['files']} files; other processes used up to {summary['max_other_cores']} cores)")
    out = {
        "machine": it.machine_info(),
        "args": {k: str(v) for k, v in vars(args).items()},
        "ray": {"version": ray.__version__, "cpus": args.cpus, "cluster_start_s": cluster_start},
        "corpus": corpus,
        "chunks": len(reference),
        "repeats": repeats,
        "summary": summary,
    }
    if not args.quick or args.out != parser.get_default("out"):
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(out, indent=2) + "\n")
        log(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
