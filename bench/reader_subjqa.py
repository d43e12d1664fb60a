"""Reader tuning on a real domain: SubjQA electronics (product reviews), train on train, score on test.

Three readers, EM/F1 given each question's own review (answerable questions only; SubjQA's ``ANSWERNOTFOUND``
rows are dropped because sixfold's span reader always answers and abstention is scored elsewhere):
  base   the packaged all-MiniLM-L6-v2 encoder with a fresh QA head (no QA training: near zero)
  squad  that encoder tuned on SQuAD v1.1 dev questions (a general QA reader, made here with the tuner)
  tuned  the squad reader further tuned on SubjQA electronics train with ``tune_reader`` (the CLI's code path)
The test questions come from SubjQA's own test split and are never seen in training. Subsets keep the run to
minutes on 2 cores; the sizes are in the JSON. Writes bench/results/reader_subjqa.json.

    nice -n 5 python bench/reader_subjqa.py [--train 400] [--test 150] [--squad-train 600] [--epochs 1]
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import random
import shutil
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import pandas as pd  # noqa: E402

from sixfold.core.models import DEFAULT_EMBEDDER, resolve_model  # noqa: E402
from sixfold.tuner.data import QAExample, load_qa_file  # noqa: E402
from sixfold.tuner.reader import ReaderTrainConfig, evaluate_reader, train_reader, tune_reader  # noqa: E402

from benchdata import add_data_argument, check_data, default_cache_dir  # noqa: E402  (bench/ is sys.path[0])

CACHE = default_cache_dir("tuner")


def subjqa(split: str, domain: str, data: Path) -> list[QAExample]:
    """Answerable SubjQA questions, one example per q_review_id with all its gold spans."""
    frame = pd.read_csv(data / "subjqa" / domain / f"{split}.csv.gz")
    frame = frame[frame.human_ans_spans != "ANSWERNOTFOUND"]
    examples = []
    for qid, rows in frame.groupby("q_review_id", sort=True):
        context = rows.review.iloc[0]
        if context.endswith("ANSWERNOTFOUND"):
            context = context[: -len("ANSWERNOTFOUND")].rstrip()
        answers = []
        for span, indices in zip(rows.human_ans_spans, rows.human_ans_indices):
            start, end = ast.literal_eval(indices)
            if context[start:end] != span:
                start = context.find(span)
            if start >= 0 and span.strip():
                answers.append({"text": span, "answer_start": int(start)})
        if answers:
            examples.append(QAExample(str(qid), rows.question.iloc[0], context, answers))
    return examples


def write_jsonl(examples: list[QAExample], path: Path) -> Path:
    with open(path, "w") as handle:
        for e in examples:
            handle.write(json.dumps({"id": e.id, "question": e.question, "context": e.context, "answers": e.answers}) + "\n")
    return path


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--domain", default="electronics")
    ap.add_argument("--train", type=int, default=400)
    ap.add_argument("--test", type=int, default=150)
    ap.add_argument("--squad-train", type=int, default=600)
    ap.add_argument("--epochs", type=float, default=1.0)
    ap.add_argument("--out", default=str(REPO / "bench" / "results" / "reader_subjqa.json"))
    add_data_argument(ap)
    args = ap.parse_args()
    check_data(ap, args.data, Path("subjqa") / args.domain, "squad_v1.1_dev/dev-v1.1.json")
    config = ReaderTrainConfig(epochs=args.epochs, learning_rate=1e-4, batch_size=16, max_length=256, stride=64)
    work = CACHE / "subjqa"
    work.mkdir(parents=True, exist_ok=True)

    train_all, test_all = subjqa("train", args.domain, args.data), subjqa("test", args.domain, args.data)
    train = random.Random(0).sample(train_all, min(args.train, len(train_all)))
    test = random.Random(0).sample(test_all, min(args.test, len(test_all)))
    assert not {e.question + e.context for e in train} & {e.question + e.context for e in test}
    write_jsonl(train, work / "train.jsonl")
    write_jsonl(test, work / "test.jsonl")
    results: dict = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": f"{os.cpu_count()} cores",
        "domain": args.domain,
        "answerable_train_available": len(train_all),
        "answerable_test_available": len(test_all),
        "train_questions": len(train),
        "test_questions": len(test),
        "config": config.__dict__,
    }

    base = resolve_model(DEFAULT_EMBEDDER).path
    t0 = time.perf_counter()
    results["base"] = evaluate_reader(base, test)
    results["base_seconds"] = time.perf_counter() - t0
    print("base", results["base"], flush=True)

    squad_reader = CACHE / f"squad_reader_{args.squad_train}"
    t0 = time.perf_counter()
    if not (squad_reader / "config.json").is_file():
        squad = random.Random(0).sample(load_qa_file(args.data / "squad_v1.1_dev" / "dev-v1.1.json"), args.squad_train)
        squad_config = ReaderTrainConfig(epochs=1.0, learning_rate=1e-4, batch_size=16, max_length=192, stride=48)
        tmp = squad_reader.with_name(squad_reader.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        train_reader(base, squad, CACHE / "squad_reader_work", tmp, squad_config)
        os.replace(tmp, squad_reader)
    results["squad_reader"] = {
        "questions": args.squad_train,
        "source": "SQuAD v1.1 dev, random sample (seed 0)",
        "seconds": time.perf_counter() - t0,
    }

    index = CACHE / "subjqa_idx"  # tune_reader keeps versions in an index's registry: a small index of the examples
    if not (index / "sixfold-index.json").is_file():
        from sixfold.engine import Engine

        Engine.open(index).index(REPO / "examples" / "corpus")
    shutil.rmtree(index / "models", ignore_errors=True)
    t0 = time.perf_counter()
    result = tune_reader(
        index,
        work / "train.jsonl",
        work / "test.jsonl",
        base=str(squad_reader),
        config=config,
        activate="no",
        eval_limit=len(test),
    )
    results["squad"] = result.before
    results["tuned"] = result.after
    results["tune_seconds"] = time.perf_counter() - t0
    results["delta_vs_squad"] = {k: result.after[k] - result.before[k] for k in ("EM", "F1")}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=2))
    print(f"{'reader':<28} {'EM':>6} {'F1':>6}")
    for name, key in (("base (fresh QA head)", "base"), ("SQuAD-tuned", "squad"), ("SQuAD + SubjQA train", "tuned")):
        print(f"{name:<28} {results[key]['EM']:6.1f} {results[key]['F1']:6.1f}")


if __name__ == "__main__":
    main()
