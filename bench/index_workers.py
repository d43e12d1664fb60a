"""``sixfold index --workers N`` against the honest limit: raw encode of the same chunks (issue 16, one machine).

    HF_HUB_OFFLINE=1 .venv/bin/python bench/index_workers.py                  # SciFact subset + Debian handbook (es)
    HF_HUB_OFFLINE=1 .venv/bin/python bench/index_workers.py --quick          # a small run to check it works

For each corpus: the embedder is loaded and warmed up once; then, per repeat, ``Engine.index`` into a fresh index with
each ``--workers`` value (walk, hash, load, chunk, embed, store, commit; model load excluded), and the raw encode of
exactly the chunk texts that were indexed (``embedder.encode`` in the calls the pipeline makes: whole files gathered
until >= 512 chunks), on the same embedder object. Each index run's ratio is taken against the raw encode of its own
repeat, minutes apart, so both saw about the same load. Load and chunk alone (one thread, no embedding) is timed too,
to show what the loader costs next to the encoder.

Corpora: ``scifact`` (the first ``--scifact-docs`` BEIR SciFact abstracts, one .txt each, all-MiniLM-L6-v2) and ``es``
(demo_docs_es/debian-handbook-es as shipped, HTML and text, use-multilingual-v3: the embedder sixfold picks for it).
The machine's load is recorded per measurement (cores used by other processes), as in bench/index_throughput.py.

The loader processes are spawned: they re-run this script's top level, so it imports only the standard library there.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

SCIFACT = "beir_scifact/corpus.jsonl"
ES_FOLDER = "demo_docs_es/debian-handbook-es"
MODELS = {"scifact": "all-MiniLM-L6-v2", "es": "use-multilingual-v3"}


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def write_scifact(data: Path, dest: Path, n: int) -> Path:
    """The first ``n`` SciFact abstracts, one ``<id>.txt`` each (title, blank line, abstract)."""
    dest.mkdir(parents=True, exist_ok=True)
    with open(data / SCIFACT, encoding="utf-8") as handle:
        for i, line in enumerate(handle):
            if i >= n:
                break
            doc = json.loads(line)
            (dest / f"{doc['_id']}.txt").write_text(f"{doc.get('title', '')}\n\n{doc.get('text', '')}\n", encoding="utf-8")
    return dest


def load_and_chunk_alone(folder: Path, embedder) -> dict:
    """Walk, load, detect and chunk every file on this thread (what the loader does, without the encoder beside it)."""
    from sixfold.indexer.chunking import Chunker
    from sixfold.indexer.pipeline import walk_folder
    from sixfold.indexer.prepare import Job, Prepared, prepare_file

    chunker = Chunker.for_embedder(embedder, 200, 40)
    paths, _ = walk_folder(folder)
    started, cpu = time.perf_counter(), time.process_time()
    chunks = 0
    for path in paths:
        item = prepare_file(Job(path.name, path, "", False), chunker, None)
        chunks += len(item.chunks) if isinstance(item, Prepared) else 0
    return {"files": len(paths), "chunks": chunks, "wall_s": time.perf_counter() - started, "cpu_s": time.process_time() - cpu}


def encode_grouped(embedder, rows: list[tuple[str, str]], batch_size: int) -> float:
    """Raw encode in the pipeline's calls: whole files gathered until >= EMBED_GROUP chunks."""
    from index_throughput import pipeline_groups  # bench/ is sys.path[0]

    groups = pipeline_groups(rows)
    started = time.perf_counter()
    for group in groups:
        embedder.encode(group, batch_size=batch_size)
    return time.perf_counter() - started


def raw_encode_repeat(embedder, rows: list[tuple[str, str]], batch_size: int, runs: dict, it) -> dict:
    """One repeat's raw encode of the indexed chunks (in the pipeline's groups), under ``it.Load``; sets each of
    ``runs``' ``ratio_to_raw`` against it."""
    with it.Load() as load:
        seconds = encode_grouped(embedder, rows, batch_size)
    raw = {"wall_s": seconds, "chunks_per_s": len(rows) / seconds, "load": load.result}
    for run in runs.values():
        run["ratio_to_raw"] = run["chunks_per_s"] / raw["chunks_per_s"]
    return raw


def summarise(repeats: list[dict], keys: dict[str, str]) -> dict:
    """Medians over ``repeats`` of the raw encode and of each run (``keys``: summary name -> the run's key in a
    repeat's ``index``), and the most cores other processes held during any measurement."""
    return {
        "raw_chunks_per_s_median": statistics.median(r["raw_encode"]["chunks_per_s"] for r in repeats),
        **{
            name: {
                "chunks_per_s_median": statistics.median(r["index"][key]["chunks_per_s"] for r in repeats),
                "ratio_to_raw_median": statistics.median(r["index"][key]["ratio_to_raw"] for r in repeats),
                "ratio_to_raw_each": [round(r["index"][key]["ratio_to_raw"], 3) for r in repeats],
                "wall_s_each": [round(r["index"][key]["wall_s"], 1) for r in repeats],
            }
            for name, key in keys.items()
        },
        "max_other_cores": max(
            [r["raw_encode"]["load"]["other_cores"] for r in repeats]
            + [x["load"]["other_cores"] for r in repeats for x in r["index"].values()]
        ),
    }


def run_corpus(name: str, folder: Path, args, workdir: Path, it) -> dict:
    from sixfold.engine import Engine
    from sixfold.indexer.embedding import load_embedder

    model = MODELS[name]
    embedder = load_embedder(model)
    embedder.encode(["warm up the model"] * 64, batch_size=args.batch_size)
    with it.Load() as load:
        alone = load_and_chunk_alone(folder, embedder)
    alone["load"] = load.result
    log(f"{name}: load+chunk alone {alone['files']} files -> {alone['chunks']} chunks in {alone['wall_s']:.1f} s")
    rows: list[tuple[str, str]] = []
    repeats = []
    for rep in range(args.repeats):
        runs = {}
        for workers in args.workers:
            index = workdir / f"{name}-w{workers}-r{rep}"
            engine = Engine.open(index, model=model)
            with it.Load() as load:
                started = time.perf_counter()
                report = engine.index(folder, batch_size=args.batch_size, workers=workers)
                wall = time.perf_counter() - started
            snapshot = engine.snapshot()
            got = snapshot.con.execute("SELECT path, text FROM chunks ORDER BY chunk_id").fetchall()
            engine.close()
            shutil.rmtree(index, ignore_errors=True)
            if rows and got != rows:
                raise SystemExit(f"{name}: --workers {workers} indexed other chunks than the first run")
            rows = rows or got
            runs[workers] = {
                "wall_s": wall,
                "chunks": report.chunks_added,
                "files": report.added,
                "skipped": len(report.skipped),
                "chunks_per_s": report.chunks_added / wall,
                "load": load.result,
            }
            log(
                f"  rep {rep} --workers {workers}: {report.chunks_added} chunks in {wall:.1f} s = "
                f"{report.chunks_added / wall:.1f}/s (other processes: {load.result['other_cores']} cores)"
            )
        raw = raw_encode_repeat(embedder, rows, args.batch_size, runs, it)
        log(f"  rep {rep} raw encode: {len(rows)} chunks in {raw['wall_s']:.1f} s = {raw['chunks_per_s']:.1f}/s")
        repeats.append({"index": {str(w): r for w, r in runs.items()}, "raw_encode": raw})
    summary = summarise(repeats, {f"workers_{w}": str(w) for w in args.workers})
    return {
        "corpus": name,
        "folder": str(folder),
        "model": model,
        "chunks": len(rows),
        "load_and_chunk_alone": alone,
        "repeats": repeats,
        "summary": summary,
    }


def print_table(results: list[dict], workers: list[int]) -> None:
    head = ["corpus (model)", "files", "chunks", "load+chunk alone", "raw encode/s"]
    head += [f"--workers {w}/s (ratio)" for w in workers] + ["other cores"]
    lines = [" | ".join(head), " | ".join("---" for _ in head)]
    for r in results:
        s = r["summary"]
        cells = [
            f"{r['corpus']} ({r['model']})",
            str(r["load_and_chunk_alone"]["files"]),
            f"{r['chunks']:,}",
            f"{r['load_and_chunk_alone']['wall_s']:.1f} s",
            f"{s['raw_chunks_per_s_median']:.1f}",
        ]
        for w in workers:
            run = s[f"workers_{w}"]
            cells.append(f"{run['chunks_per_s_median']:.1f} ({run['ratio_to_raw_median']:.2f})")
        cells.append(f"<= {s['max_other_cores']}")
        lines.append(" | ".join(cells))
    print("\n".join(f"| {line} |" for line in lines))


def main(argv: list[str] | None = None) -> int:
    from benchdata import add_data_argument, check_data  # bench/ is sys.path[0]

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_data_argument(parser)
    parser.add_argument("--corpora", default="scifact,es", help="comma-separated: scifact, es (default: both)")
    parser.add_argument("--scifact-docs", type=int, default=800, help="SciFact abstracts written as files (default 800)")
    parser.add_argument(
        "--scifact-model", default=MODELS["scifact"], help="embedder of the SciFact runs (default %(default)s; e.g. the dual one)"
    )
    parser.add_argument("--workers", default="1,2", help="comma-separated --workers values to index with (default 1,2)")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--quick", action="store_true", help="80 SciFact files, 1 repeat")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "index_workers.json")
    args = parser.parse_args(argv)
    args.workers = [int(w) for w in args.workers.split(",")]
    corpora = [c.strip() for c in args.corpora.split(",") if c.strip()]
    if args.quick:
        args.scifact_docs, args.repeats = 80, 1
    MODELS["scifact"] = args.scifact_model
    needed = [SCIFACT] * ("scifact" in corpora) + [ES_FOLDER] * ("es" in corpora)
    data = check_data(parser, args.data, *needed)

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    import index_throughput as it  # Load (other processes' CPU) and machine_info

    results = []
    with tempfile.TemporaryDirectory(prefix="sixfold-workers-") as tmp:
        workdir = Path(tmp)
        for name in corpora:
            if name == "scifact":
                folder = write_scifact(data, workdir / "scifact", args.scifact_docs)
            elif name == "es":
                folder = data / ES_FOLDER
            else:
                parser.error(f"unknown corpus {name!r} (scifact, es)")
            results.append(run_corpus(name, folder, args, workdir, it))
    print_table(results, args.workers)
    out = {"machine": it.machine_info(), "args": {k: str(v) for k, v in vars(args).items()}, "results": results}
    if not args.quick or args.out != parser.get_default("out"):
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(out, indent=2) + "\n")
        log(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
