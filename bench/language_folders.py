"""Issue 14's folder targets: is the file that answers a realistic question in the top 5, in a Spanish folder indexed
with no flags, and for Spanish questions over an English folder?

The folders are XQuAD (../shared/data/xquad: 240 SQuAD dev paragraphs and their 1,190 questions, professionally
translated into Spanish; CC BY-SA 4.0), one paragraph per file under its article's folder, in Spanish and in the
parallel English. Each question is asked through ``Engine.search`` (the default mode) and scored by whether its
paragraph's file is among the top 5 distinct files.

  python bench/language_folders.py [--limit N] [--out bench/results/language_folders.json]

Rows: the Spanish folder with no flags (the folder picks its embedder); the English folder with no flags (MiniLM),
with the dual MiniLM|USE embedder (``--model all-MiniLM-L6-v2+use-multilingual-v3``) and with USE, each asked the
Spanish and the English questions. Index time per row, so "a non-English folder indexes at least as fast" is read here.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sixfold.cli import render  # noqa: E402
from sixfold.engine import Engine  # noqa: E402

DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "xquad"
HERE = Path(__file__).resolve().parent


def write_folder(language: str, folder: Path) -> dict[str, str]:
    """One file per paragraph; returns question id -> (its question, its file)."""
    data = json.loads((DATA / f"xquad.{language}.json").read_text(encoding="utf-8"))
    questions = {}
    for a, article in enumerate(data["data"]):
        for p, paragraph in enumerate(article["paragraphs"]):
            rel = f"{a:02d}-{article['title'][:40]}/{p:02d}.txt"
            (folder / rel).parent.mkdir(parents=True, exist_ok=True)
            (folder / rel).write_text(paragraph["context"], encoding="utf-8")
            for qa in paragraph["qas"]:
                questions[qa["id"]] = (qa["question"], rel)
    return questions


def top5(engine: Engine, questions: dict, files_by_id: dict, limit: int | None) -> tuple[float, float]:
    """Share of questions whose file is in the top 5 distinct files; p50 search ms."""
    ids = list(questions)[:limit] if limit else list(questions)
    found, times = 0, []
    for qid in ids:
        t = time.perf_counter()
        hits = engine.search(questions[qid][0], k=30)
        times.append(time.perf_counter() - t)
        files: list[str] = []
        for h in hits:
            if h.path not in files:
                files.append(h.path)
        found += files_by_id[qid] in files[:5]
    times.sort()
    return found / len(ids), 1000 * times[len(times) // 2]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--limit", type=int, help="only the first N questions of each language")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "language_folders.json")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="sixfold-langfolders-"))
    es_q = write_folder("es", work / "es")
    en_q = write_folder("en", work / "en")
    files = {qid: rel for qid, (_q, rel) in en_q.items()}  # the same layout in both languages
    rows = []
    runs = (("es", None), ("en", None), ("en", "all-MiniLM-L6-v2+use-multilingual-v3"), ("en", "use-multilingual-v3"))
    for folder, model in runs:
        engine = Engine.open(work / f"idx-{folder}-{model}", model=model)
        started = time.perf_counter()
        report = engine.index(work / folder)
        seconds = time.perf_counter() - started
        status = engine.status()
        for qlang, questions in (("es", es_q), ("en", en_q)):
            share, p50 = top5(engine, questions, files, args.limit)
            rows.append(
                {
                    "folder": folder,
                    "model": status.model,
                    "model_named": model is not None,
                    "search_mode": status.search_mode,
                    "questions": qlang,
                    "top5": round(share, 4),
                    "p50_ms": round(p50, 1),
                    "index_s": round(seconds, 1),
                    "chunks": report.chunks_added,
                    "chunks_per_s": round(report.chunks_added / seconds, 1),
                }
            )
            print(json.dumps(rows[-1]), flush=True)
        engine.close()
    table = render.table(
        "answering file in the top 5 (XQuAD paragraphs as files)",
        ["folder", "embedder", "named", "mode", "questions", "top 5", "p50 ms", "index s", "chunks/s"],
        [
            [r["folder"], r["model"], "yes" if r["model_named"] else "no (folder's pick)", r["search_mode"], r["questions"],
             f"{100 * r['top5']:.1f} %", str(r["p50_ms"]), str(r["index_s"]), str(r["chunks_per_s"])]
            for r in rows
        ],
    )  # fmt: skip
    render.console().print(table)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps(
            {"rows": rows, "date": time.strftime("%Y-%m-%d"), "machine": platform.platform(), "cpus": os.cpu_count()},
            indent=1,
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
