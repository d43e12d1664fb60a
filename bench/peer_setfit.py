"""Few-shot classification: sixfold's tuned classifier (``sixfold tune classifier``) vs the ``setfit`` library, same
base model, examples and seeds, same machine, same run; with sixfold's untuned nearest-example scorer.

    python bench/peer_setfit.py [--datasets banking77 trec_qc ...] [--shots 8 16] [--seeds 0] [--test-cap 500]
                                [--base all-MiniLM-L6-v2]

Per dataset (loaders, example sampling and test caps of bench/classify_eval.py; see each SOURCE.md), per number of
examples per label and seed, all three from ``--base`` (default the packaged all-MiniLM-L6-v2; a pulled model such as
all-mpnet-base-v2, or a folder):
  1. nearest: ``Classifier`` (what ``classify`` does untuned) on that embedder;
  2. sixfold tuned: ``sixfold.tuner.classifier.train_classifier`` from the same model folder with its defaults
     (``ClassifierTrainConfig``: in-batch triplets of label groups, 120 steps of 16, head C=100), then ``TunedClassifier``;
  3. setfit: ``bench/setfit_runner.py`` in its own venv (``.venv-setfit``: torch==2.13.0 first, then setfit==1.2.0;
     created on first use), ``SetFitModel.from_pretrained`` on the same folder, setfit's own recipe: pairs with
     ``num_iterations`` 20, 1 epoch, batch 16, body learning rate 2e-5, and its default LogisticRegression head.
Both: max length 128, the run's seed. Training times are wall time on this machine, model load included; run nothing
else beside it.
Writes bench/results/peer_setfit.json and prints a table.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from classify_eval import DATASETS, accuracy, cap, few_shot, macro_f1  # noqa: E402

from benchdata import add_data_argument, check_data  # noqa: E402

SETFIT_VENV = ROOT / ".venv-setfit"
ITERATIONS, EPOCHS, BATCH, LEARNING_RATE, MAX_LENGTH = 20, 1, 16, 2e-5, 128


def setfit_python() -> Path:
    python = SETFIT_VENV / "bin" / "python"
    if not python.is_file():
        subprocess.run([sys.executable, "-m", "venv", str(SETFIT_VENV)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", "torch==2.13.0"], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", "setfit==1.2.0"], check=True)
    return python


def write_jsonl(path: Path, rows: list[tuple[str, str]]) -> Path:
    path.write_text("".join(json.dumps({"text": t, "label": lab}) + "\n" for t, lab in rows), encoding="utf-8")
    return path


def run_sixfold(examples: list[tuple[str, str]], test: list[tuple[str, str]], base: str, seed: int, **options) -> dict:
    from sixfold.reader.classify import TunedClassifier
    from sixfold.reader.types import LabeledExample
    from sixfold.tuner.classifier import ClassifierTrainConfig, train_classifier

    config = ClassifierTrainConfig(max_length=MAX_LENGTH, seed=seed, **options)
    with tempfile.TemporaryDirectory() as scratch:
        started = time.perf_counter()
        pairs = train_classifier([LabeledExample(t, lab) for t, lab in examples], base, Path(scratch), config)
        trained = time.perf_counter() - started
        predicted = [r.label for r in TunedClassifier.load(scratch).classify([t for t, _ in test])]
    gold = [lab for _, lab in test]
    return {
        "accuracy": accuracy(gold, predicted),
        "macro_f1": macro_f1(gold, predicted),
        "train_seconds": trained,
        "pairs": pairs,
    }


def run_setfit(examples: list[tuple[str, str]], test: list[tuple[str, str]], base: str, seed: int) -> dict:
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        train, tests = write_jsonl(folder / "train.jsonl", examples), write_jsonl(folder / "test.jsonl", test)
        command = [
            str(setfit_python()), str(ROOT / "bench" / "setfit_runner.py"),
            "--train", str(train), "--test", str(tests),
            "--model", base, "--out", str(folder / "out.json"), "--num-iterations", str(ITERATIONS), "--epochs", str(EPOCHS),
            "--batch-size", str(BATCH), "--learning-rate", str(LEARNING_RATE), "--seed", str(seed),
            "--max-length", str(MAX_LENGTH),
        ]  # fmt: skip
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
        return json.loads((folder / "out.json").read_text())


def run_nearest(examples: list[tuple[str, str]], test: list[tuple[str, str]], base: str) -> dict:
    from sixfold.indexer.embedding import load_embedder
    from sixfold.reader.classify import Classifier
    from sixfold.reader.types import LabeledExample

    classifier = Classifier([LabeledExample(t, lab) for t, lab in examples], load_embedder(base), cache=False)
    predicted = [r.label for r in classifier.classify([t for t, _ in test])]
    gold = [lab for _, lab in test]
    return {"accuracy": accuracy(gold, predicted), "macro_f1": macro_f1(gold, predicted)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_data_argument(parser)
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=list(DATASETS))
    parser.add_argument("--shots", nargs="+", type=int, default=[8, 16])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument("--test-cap", type=int, default=500)
    parser.add_argument("--skip-setfit", action="store_true", help="sixfold only (no peer venv)")
    parser.add_argument(
        "--objectives", nargs="+", choices=["triplets", "pairs"],
        help="train sixfold once per objective (cells get a 'sixfold_<objective>' entry; 'sixfold' is the first)",
    )  # fmt: skip
    parser.add_argument("--max-steps", type=int, help="sixfold's training steps instead of its default (-1: epochs decide)")
    parser.add_argument("--epochs", type=float, help="sixfold's epochs instead of its default (with --max-steps -1)")
    parser.add_argument(
        "--base", default="all-MiniLM-L6-v2",
        help="the sentence embedder all three start from: packaged, pulled (e.g. all-mpnet-base-v2) or a folder",
    )  # fmt: skip
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "peer_setfit.json"))
    args = parser.parse_args()
    data = check_data(parser, args.data, *args.datasets)

    import torch

    from sixfold.core.models import resolve_model
    from sixfold.tuner.classifier import ClassifierTrainConfig

    torch.set_num_threads(2)
    base = resolve_model(args.base).path
    started, cells = time.time(), []
    chosen = (("max_steps", args.max_steps), ("epochs", args.epochs))
    options = {k: v for k, v in chosen if v is not None}
    objectives = args.objectives or [ClassifierTrainConfig().objective]
    for name in args.datasets:
        pool, test = DATASETS[name](data)
        test = cap(test, args.test_cap, 0)
        for shots in args.shots:
            for seed in args.seeds:
                examples = few_shot(pool, shots, seed)
                cell = {"dataset": name, "shots": shots, "seed": seed, "examples": len(examples), "test_items": len(test)}
                cell["nearest"] = run_nearest(examples, test, base)
                for objective in objectives:
                    # pairs: SetFit's length, one pass over its 2 x 20 x N pairs, unless steps were given
                    own = {"max_steps": -1, "epochs": 1} if objective == "pairs" else {}
                    cell[f"sixfold_{objective}"] = run_sixfold(examples, test, base, seed, objective=objective, **own | options)
                cell["sixfold"] = cell[f"sixfold_{objectives[0]}"]
                if not args.skip_setfit:
                    cell["setfit"] = run_setfit(examples, test, base, seed)
                cells.append(cell)
                print(json.dumps(cell), flush=True)
    report = {
        "date": dt.datetime.now().isoformat(timespec="seconds"),
        "machine": f"{platform.machine()} {os.cpu_count()} cores, torch {torch.__version__}",
        "base_model": args.base,
        "sixfold": {"config": ClassifierTrainConfig().__dict__ | {"max_length": MAX_LENGTH} | options, "objectives": objectives},
        "setfit": {"num_iterations": ITERATIONS, "epochs": EPOCHS, "batch": BATCH, "lr": LEARNING_RATE, "max_length": MAX_LENGTH},
        "seconds": time.time() - started,
        "cells": cells,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    tuned = [f"sixfold {o}" for o in objectives]
    print("\n| dataset | shots | seeds | nearest | " + " | ".join(tuned) + " | setfit | train s (sixfold / setfit) |")
    print("|---|---:|---:|---:|" + "---:|" * len(tuned) + "---:|---:|")
    for name in args.datasets:
        for shots in args.shots:
            group = [c for c in cells if c["dataset"] == name and c["shots"] == shots]

            def mean(key: str, field: str = "accuracy", group=group) -> str:
                values = [c[key][field] for c in group if key in c]
                return f"{statistics.mean(values):.3f}" if values else "-"

            times = f"{mean('sixfold', 'train_seconds')} / {mean('setfit', 'train_seconds')}"
            row = [name, shots, len(group), mean("nearest"), *(mean(f"sixfold_{o}") for o in objectives), mean("setfit"), times]
            print("| " + " | ".join(str(x) for x in row) + " |")
    print(f"report: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
