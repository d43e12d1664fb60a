"""Kill `sixfold index` with SIGKILL at many moments of a run, and check that nothing is ever lost or corrupted.

Each round starts (or resumes) indexing a folder of small SQuAD-context files in a subprocess, kills it after a delay
spread over the whole run (model load, walk and hashing, embedding, a commit every 50 chunks), then checks that the
index opens, is consistent (as many vectors as chunks, every chunk's file recorded) and that `sixfold status` exits 0.
A series that got to the end starts again from an empty index, so every kill hits
real work. After the rounds one run finishes the job, and the result must equal a clean build row for row (chunk texts, files,
content hashes) and rank the same for a few questions.

    python bench/kill9.py [--rounds 10] [--files 200] [--data DIR] [--out bench/results/kill9.json]

Prints a table and writes JSON; exit 1 when any check failed.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchdata import add_data_argument, data_path

REPO = Path(__file__).resolve().parents[1]
CHUNK_ARGS = ("--chunk-tokens", "32", "--chunk-overlap", "0")  # many small chunks: many commits, cheap to embed


def build_folder(squad: Path, folder: Path, n_files: int) -> list[str]:
    """``n_files`` .txt files, one SQuAD dev context each; returns a few questions for the ranking check."""
    data = json.loads(squad.read_text(encoding="utf-8"))["data"]
    questions, n = [], 0
    for article in data:
        for i, paragraph in enumerate(article["paragraphs"]):
            if n >= n_files:
                return questions
            path = folder / f"{article['title'][:24]}/p{i:03d}.txt"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(paragraph["context"] + "\n", encoding="utf-8")
            if n % 40 == 3:
                questions.append(paragraph["qas"][0]["question"])
            n += 1
    return questions


def index_cmd(folder: Path, index: Path) -> list[str]:
    return [sys.executable, "-m", "sixfold", "index", str(folder), "--index", str(index), *CHUNK_ARGS, "--json"]


def env() -> dict:
    import os

    return {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "SIXFOLD_COMMIT_EVERY": "50"}


def check(index: Path) -> dict:
    """What a killed run left: does it open, is it consistent, does status pass."""
    from sixfold import Engine, SixfoldError

    committed = [p for p in index.glob("gen-*") if p.is_dir() and not p.name.endswith(".tmp")]
    if not (index / "sixfold-index.json").exists() and not committed:
        return {"state": "no commit yet", "ok": True, "files": 0, "chunks": 0}
    try:
        engine = Engine.open(index)
        snap = engine.snapshot()
        chunks, vectors = snap.count_chunks(), int(snap.vectors.ntotal)
        orphans = snap.con.execute(
            "SELECT count(*) FROM chunks c LEFT JOIN files f USING (root, path) WHERE f.path IS NULL"
        ).fetchall()[0][0]
        files = snap.count_files()
        engine.close()
    except SixfoldError as exc:
        return {"state": f"unreadable: {exc}", "ok": False, "files": 0, "chunks": 0}
    status = subprocess.run(
        [sys.executable, "-m", "sixfold", "status", "--index", str(index), "--json"], env=env(), capture_output=True, text=True
    )
    ok = chunks == vectors and orphans == 0 and status.returncode == 0
    return {"state": "consistent" if ok else "INCONSISTENT", "ok": ok, "files": files, "chunks": chunks}


def rows(index: Path) -> tuple[list, list]:
    from sixfold import Engine

    engine = Engine.open(index)
    con = engine.snapshot().con
    chunks = con.execute("SELECT path, chunk_index, text FROM chunks ORDER BY path, chunk_index").fetchall()
    files = con.execute("SELECT path, sha256, n_chunks FROM files ORDER BY path").fetchall()
    engine.close()
    return chunks, files


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--files", type=int, default=200)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", default=str(REPO / "bench" / "results" / "kill9.json"))
    add_data_argument(parser)
    args = parser.parse_args()
    squad = data_path(parser, args.data, None, "squad_v1.1_dev/dev-v1.1.json")
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory() as scratch:
        work = Path(scratch)
        folder, killed, clean = work / "docs", work / "killed", work / "clean"
        questions = build_folder(squad, folder, args.files)
        started = time.perf_counter()
        subprocess.run(index_cmd(folder, clean), env=env(), capture_output=True, check=True)
        full_run = time.perf_counter() - started
        results = []
        for number in range(1, args.rounds + 1):
            delay = rng.uniform(0.5, full_run)  # anywhere in a run: model load, walk, embedding, commits
            proc = subprocess.Popen(index_cmd(folder, killed), env=env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(delay)
            finished = proc.poll() is not None
            if not finished:
                proc.send_signal(signal.SIGKILL)
            proc.wait()
            outcome = check(killed)
            if finished and proc.returncode != 0:  # a run that failed by itself is a failure, not a kill
                outcome = {**outcome, "state": f"run failed by itself (exit {proc.returncode})", "ok": False}
            results.append({"round": number, "killed_after_s": round(delay, 2), "finished_first": finished, **outcome})
            if outcome["files"] == args.files and number < args.rounds:
                shutil.rmtree(killed)  # that series is complete: the next kills hit a new build, not a no-op run
            print(
                f"round {number:2d}: kill after {delay:5.1f} s{' (run had ended)' if finished else ''}: "
                f"{outcome['state']}, {outcome['files']} files, {outcome['chunks']} chunks",
                flush=True,
            )
        final = subprocess.run(index_cmd(folder, killed), env=env(), capture_output=True, text=True)
        same_rows = final.returncode == 0 and rows(killed) == rows(clean)
        from sixfold import Engine

        a, b = Engine.open(killed), Engine.open(clean)
        same_ranking = all(
            [(h.path, h.text) for h in a.search(q, k=5, mode=mode)] == [(h.path, h.text) for h in b.search(q, k=5, mode=mode)]
            for q in questions
            for mode in ("bm25", "dense", "hybrid")
        )
        a.close()
        b.close()
    ok = all(r["ok"] for r in results) and same_rows and same_ranking
    print()
    print("| rounds | kills | consistent after every kill | resumed run = clean build (rows) | same top 5 (3 modes) |")
    print("|---:|---:|---|---|---|")
    kills = sum(not r["finished_first"] for r in results)
    every = all(r["ok"] for r in results)
    print(f"| {len(results)} | {kills} | {every} | {same_rows} | {same_ranking} ({len(questions)} questions) |")
    report = {
        "command": " ".join(sys.argv),
        "date": time.strftime("%Y-%m-%d"),
        "files": args.files,
        "clean_run_s": round(full_run, 1),
        "rounds": results,
        "resumed_equals_clean_rows": same_rows,
        "same_ranking": same_ranking,
        "ok": ok,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(report, indent=2))
    tmp.replace(out)
    print(f"wrote {out}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
