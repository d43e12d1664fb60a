"""Where each folder QA question is lost: the diagnosis behind the reader changes of 2026-12-06 (docs/benchmarks.md,
"An unsure NOT FOUND is asked again").

For each question of a folder QA set it asks as ``sixfold ask`` does (generative) and prints one JSON line: the
answer, whether it is right, the confidence and its features, the notes (why it abstained), and whether an accepted
answer is in the passages retrieved and in the sentences the model was shown.

  python bench/folder_qa_misses.py [--questions Q] [--folder DIR] [--index DIR] [--only 4,9,22] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sixfold.engine import Engine  # noqa: E402
from sixfold.eval.datasets import load_folder_questions  # noqa: E402
from sixfold.eval.qa import answer_correct  # noqa: E402
from sixfold.reader.answer import answer_question  # noqa: E402
from sixfold.reader.generative import select_sentences  # noqa: E402
from sixfold.reader.llm import load_llm  # noqa: E402

from benchdata import default_cache_dir  # noqa: E402  (bench/ is sys.path[0])

SET = Path(__file__).resolve().parent / "folder_qa"


def _holds(answers: list[str], text: str) -> bool | None:
    """Whether an accepted answer is in ``text``; None for a question graded by a regex only (or unanswerable)."""
    return any(a.lower() in text.lower() for a in answers) if answers else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--questions", type=Path, default=SET / "questions.jsonl")
    parser.add_argument("--folder", type=Path, default=SET / "docs")
    parser.add_argument("--index", type=Path, default=default_cache_dir("folder_qa"))
    parser.add_argument("--only", help="question numbers (0-based, comma-separated)")
    parser.add_argument("--out", type=Path, help="also write the rows here as one JSON list")
    args = parser.parse_args()
    only = {int(n) for n in args.only.split(",")} if args.only else None
    engine = Engine(args.index)
    engine.index(args.folder)
    llm = load_llm(engine.generator_model())
    rows = []
    for n, item in enumerate(load_folder_questions(args.questions)):
        if only is not None and n not in only:
            continue
        started = time.perf_counter()
        passages = engine.passages(item.question, 5)
        answer = answer_question(item.question, passages, "generative", llm=llm, scorer=engine.sentence_scorer)
        seconds = time.perf_counter() - started
        shown = select_sentences(llm, item.question, passages, engine.sentence_scorer)

        row = {
            "n": n,
            "question": item.question,
            "answerable": item.answerable,
            "found": answer.found,
            "answer": answer.answer,
            "right": bool(answer.found and answer_correct(answer.answer, item.answers, item.answer_regex)),
            "confidence": round(answer.confidence, 3),
            "features": answer.features,
            "notes": answer.notes,
            "in_passages": _holds(item.answers, " ".join(p.text for p in passages)),
            "in_shown": _holds(item.answers, " ".join(s.text for s in shown)),
            "seconds": round(seconds, 1),
        }
        rows.append(row)
        print(json.dumps(row), flush=True)
    if args.out:
        args.out.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
