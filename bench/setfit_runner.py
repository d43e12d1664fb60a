"""SetFit peer runner for the few-shot classification benchmark.

Trains the `setfit` library (contrastive fine-tuning of a sentence-transformers
body on pairs built from the labelled examples, then its default
LogisticRegression head) on a train JSONL file, predicts a test JSONL file and
writes accuracy / macro-F1 / timings as JSON. It is the peer side of the
comparison with sixfold's few-shot classifier and does NOT import sixfold; run
it with the separate venv that has setfit installed:

    .venv-setfit/bin/python bench/setfit_runner.py \\
        --train train.jsonl --test test.jsonl --model MODEL_DIR --out result.json \\
        [--num-iterations 20] [--epochs 1] [--batch-size 16] \\
        [--learning-rate 2e-5] [--seed 0] [--max-length 64]

train/test rows are {"text": ..., "label": ...}; labels are arbitrary strings.
MODEL_DIR is a local sentence-transformers folder; nothing is downloaded
(HF_HUB_OFFLINE=1).
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("WANDB_DISABLED", "true")

import setfit  # noqa: E402
import torch  # noqa: E402
from datasets import Dataset  # noqa: E402
from sklearn.metrics import accuracy_score, f1_score  # noqa: E402


def read_jsonl(path: str) -> tuple[list[str], list[str]]:
    texts, labels = [], []
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                row = json.loads(line)
                texts.append(str(row["text"]))
                labels.append(str(row["label"]))
    return texts, labels


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--train", required=True)
    p.add_argument("--test", required=True)
    p.add_argument("--model", required=True, help="local sentence-transformers folder")
    p.add_argument("--out", required=True)
    p.add_argument("--num-iterations", type=int, default=20)
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--learning-rate", type=float, default=2e-5)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--max-length", type=int, default=64)
    a = p.parse_args()

    torch.set_num_threads(2)
    train_texts, train_labels = read_jsonl(a.train)
    test_texts, test_labels = read_jsonl(a.test)

    # Labels go to setfit as ints 0..k-1 and are mapped back to strings on output.
    label_names = sorted(set(train_labels))
    to_id = {name: i for i, name in enumerate(label_names)}
    train_ds = Dataset.from_dict({"text": train_texts, "label": [to_id[x] for x in train_labels]})

    config = {
        "model": a.model,
        "num_iterations": a.num_iterations,
        "epochs": a.epochs,
        "batch_size": a.batch_size,
        "learning_rate": a.learning_rate,
        "seed": a.seed,
        "max_length": a.max_length,
        "torch_threads": torch.get_num_threads(),
        "labels": label_names,
    }

    t0 = time.perf_counter()
    model = setfit.SetFitModel.from_pretrained(a.model, local_files_only=True)
    # TrainingArguments.max_length only reaches setfit's torch head; cap the body too,
    # so contrastive training, the LogisticRegression head and predict all truncate.
    model.model_body.max_seq_length = a.max_length
    # setfit's default output_dir is ./checkpoints: keep scratch files out of the cwd.
    with tempfile.TemporaryDirectory(prefix="setfit-runner-") as scratch:
        args = setfit.TrainingArguments(
            num_iterations=a.num_iterations,
            num_epochs=a.epochs,
            batch_size=a.batch_size,
            body_learning_rate=a.learning_rate,
            seed=a.seed,
            max_length=a.max_length,
            report_to="none",
            output_dir=scratch,
            save_strategy="no",
        )
        setfit.Trainer(model=model, args=args, train_dataset=train_ds).train()
    train_seconds = time.perf_counter() - t0

    t0 = time.perf_counter()
    pred_ids = model.predict(test_texts, batch_size=a.batch_size, as_numpy=True)
    predict_seconds = time.perf_counter() - t0
    preds = [label_names[int(i)] for i in pred_ids]

    result = {
        "accuracy": accuracy_score(test_labels, preds),
        "macro_f1": f1_score(test_labels, preds, average="macro", zero_division=0),
        "train_seconds": round(train_seconds, 3),
        "predict_seconds": round(predict_seconds, 3),
        "train_examples": len(train_texts),
        "test_items": len(test_texts),
        "setfit_version": setfit.__version__,
        "config": config,
    }
    with open(a.out, "w", encoding="utf-8") as f:
        json.dump(result, f, indent=2)
        f.write("\n")
    print(json.dumps({k: result[k] for k in ("accuracy", "macro_f1", "train_seconds", "predict_seconds")}))


if __name__ == "__main__":
    main()
