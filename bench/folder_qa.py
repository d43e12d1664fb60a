"""The folder QA benchmark of issue 13: real Debian package documentation (bench/folder_qa/docs: html, md, txt, pdf,
.gz, extension-less files) and questions phrased in a user's own words (bench/folder_qa/questions.jsonl: 46
answerable, 16 on-topic unanswerable), asked through ``Engine.ask`` as ``sixfold ask`` does.

Targets: >= 80 % of the answerable questions correct with the right file cited, >= 80 % of the unanswerable ones
abstained, no wrong answer with confidence >= 0.8.

  python bench/folder_qa.py [--mode auto|extractive|generative] [--generator MODEL] [--reader DIR] [-k 5] [--limit N]

The same run as ``sixfold eval qa --folder bench/folder_qa/docs --questions bench/folder_qa/questions.jsonl``; prints
its tables and writes bench/results/folder_qa.json (the report, plus the machine, date and commit).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sixfold.cli import render  # noqa: E402
from sixfold.cli.evaluate import folder_qa_tables  # noqa: E402
from sixfold.eval.qa import OUTCOMES, eval_folder_qa  # noqa: E402

from benchdata import default_cache_dir  # noqa: E402  (bench/ is sys.path[0])

HERE = Path(__file__).resolve().parent
SET = HERE / "folder_qa"


def _commit() -> str | None:
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], cwd=HERE, capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--folder", type=Path, default=SET / "docs", help="default: %(default)s")
    parser.add_argument("--questions", type=Path, default=SET / "questions.jsonl", help="default: %(default)s")
    parser.add_argument(
        "--index", type=Path, default=default_cache_dir("folder_qa"), help="the folder's index, kept (default: %(default)s)"
    )
    parser.add_argument("--mode", default="auto", choices=["auto", "extractive", "generative"])
    parser.add_argument("--reader", metavar="DIR", help="extractive QA model (default: as for sixfold ask)")
    parser.add_argument("--generator", metavar="MODEL", help="generative model (default: as for sixfold ask)")
    parser.add_argument("-k", type=int, default=5, help="passages read per question (default 5)")
    parser.add_argument("--limit", type=int, help="only the first N questions")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "folder_qa.json", help="default: %(default)s")
    args = parser.parse_args()

    progress = render.console(stderr=True)
    started = time.time()
    report = eval_folder_qa(
        args.questions,
        folder=args.folder,
        index_dir=args.index,
        k=args.k,
        mode=args.mode,
        reader=args.reader,
        generator=args.generator,
        limit=args.limit,
        progress=lambda line: progress.print(line, markup=False, highlight=False),
    )
    out = render.console()
    for table in folder_qa_tables(report, OUTCOMES):
        out.print(table)
    data = report.to_dict() | {
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "python": platform.python_version()},
        "date": time.strftime("%Y-%m-%d %H:%M", time.localtime(started)),
        "wall_seconds": time.time() - started,
        "commit": _commit(),
        "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", dir=args.out.parent, suffix=".tmp", delete=False, encoding="utf-8") as handle:
        json.dump(data, handle, indent=2, ensure_ascii=False, default=str)
    os.replace(handle.name, args.out)
    progress.print(f"report: {args.out}", markup=False, highlight=False)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
