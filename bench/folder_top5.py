"""Is the file that answers a folder QA question among the top 5 files a search returns? Retrieval only (no
reader), over a real folder indexed as ``sixfold index FOLDER`` would (the folder picks the embedder unless
``--model``), for issue 14's folder targets:

  python bench/folder_top5.py --folder ../shared/data/demo_docs_es --questions bench/folder_qa_es/questions.jsonl
  python bench/folder_top5.py --folder bench/folder_qa/docs --questions bench/folder_qa/questions.es.jsonl \\
      [--model all-MiniLM-L6-v2+use-multilingual-v3]

Prints one line of JSON per run and appends it to bench/results/folder_top5.json.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sixfold.engine import Engine  # noqa: E402
from sixfold.eval.datasets import load_folder_questions  # noqa: E402

HERE = Path(__file__).resolve().parent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--folder", type=Path, required=True)
    parser.add_argument("--questions", type=Path, required=True)
    parser.add_argument("--model", help="embedder (default: the folder's pick)")
    parser.add_argument("--index", type=Path, help="where to keep the index (default: a temporary folder)")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "folder_top5.json")
    args = parser.parse_args()
    index = args.index or Path(tempfile.mkdtemp(prefix="sixfold-top5-")) / "idx"
    engine = Engine.open(index, model=args.model)
    started = time.perf_counter()
    report = engine.index(args.folder)
    seconds = time.perf_counter() - started
    questions = [q for q in load_folder_questions(args.questions) if q.sources]
    found, misses = 0, []
    for q in questions:
        files: list[str] = []
        for hit in engine.search(q.question, k=50):
            if hit.path not in files:
                files.append(hit.path)
        ok = any(source in files[:5] for source in q.sources)
        found += ok
        if not ok:
            misses.append(q.question)
    status = engine.status()
    row = {
        "folder": str(args.folder),
        "questions": str(args.questions),
        "model": status.model,
        "model_named": args.model is not None,
        "languages": status.languages,
        "answerable": len(questions),
        "top5": round(found / len(questions), 4),
        "index_s": round(seconds, 1),
        "chunks": report.chunks_added,
        "misses": misses,
        "date": time.strftime("%Y-%m-%d"),
    }
    print(json.dumps({k: v for k, v in row.items() if k != "misses"}), flush=True)
    rows = json.loads(args.out.read_text()) if args.out.is_file() else []
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps([*rows, row], indent=1, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
