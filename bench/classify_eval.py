"""Accuracy, macro-F1 and latency of sixfold's example-based classifier (``sixfold.reader.classify.Classifier``).

    HF_HUB_OFFLINE=1 .venv/bin/python bench/classify_eval.py            # full run (~10 min on 2 busy cores)
    HF_HUB_OFFLINE=1 .venv/bin/python bench/classify_eval.py --quick    # a small run to check it works

Datasets (``--data``, default ``$SIXFOLD_BENCH_DATA`` or ``../shared/data``; see each folder's SOURCE.md):
- trec_qc: TREC-6 coarse labels; examples from train_5500, evaluated on the 500 TREC-10 test questions.
- banking77: 77 intents; examples from train.csv, evaluated on test.csv.
- ag_news: 4 topics; only the test split is available, so it is shuffled with seed 0 and cut in two disjoint
  halves: examples are sampled from the first 3,800 rows, evaluation uses the other 3,800.
- sst2_senteval: binary sentiment; examples from the (phrase-level) train split, evaluated on the labeled test split.

Settings: 8 and 16 examples per label (sampled per label with seeds 0, 1, 2; mean and std over the 3 seeds),
and "all" (the whole example pool, capped at ``--pool-cap`` rows sampled with seed 0). Test sets are capped at
``--test-cap`` items (sampled with seed 0).

Scorers on the same embeddings (all-MiniLM-L6-v2 via ``sixfold.indexer.embedding.load_embedder``):
- ``sixfold``: ``Classifier(examples, embedder, cache=False).classify(queries)`` as shipped (mean cosine of the
  best TOP_PER_LABEL examples of each label, softmax at TEMPERATURE);
- ``centroid``: nearest label centroid (normalised mean example vector), the cheap baseline;
- ``1-nn`` and ``top-10``: the shipped scorer with ``top_per_label`` 1 and 10 instead of TOP_PER_LABEL (3).
To keep the run short, every distinct text is embedded once per dataset (a memo in front of the embedder that
the Classifier calls); the per-query latency is measured separately, with the plain embedder and no memo:
one ``classify([query])`` call at a time on the "all" pool.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import os
import platform
import random
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from sixfold.indexer.embedding import load_embedder  # noqa: E402
from sixfold.reader.classify import TEMPERATURE, TOP_PER_LABEL, Classifier  # noqa: E402
from sixfold.reader.types import LabeledExample  # noqa: E402

from benchdata import add_data_argument, check_data  # noqa: E402

SEEDS = (0, 1, 2)
Rows = list[tuple[str, str]]


# ---- data ------------------------------------------------------------------------------------------------
def _trec(path: Path) -> Rows:
    rows = []
    for line in path.read_text(encoding="latin-1").splitlines():
        if line.strip():
            label, text = line.split(" ", 1)
            rows.append((text.strip(), label.split(":")[0]))
    return rows


def load_trec(data: Path) -> tuple[Rows, Rows]:
    return _trec(data / "trec_qc" / "train_5500.label"), _trec(data / "trec_qc" / "TREC_10.label")


def load_banking77(data: Path) -> tuple[Rows, Rows]:
    def read(name: str) -> Rows:
        with open(data / "banking77" / name, encoding="utf-8", newline="") as f:
            return [(r["text"], r["category"]) for r in csv.DictReader(f)]

    return read("train.csv"), read("test.csv")


def load_ag_news(data: Path) -> tuple[Rows, Rows]:
    names = (data / "ag_news" / "classes.txt").read_text(encoding="utf-8").split()
    with open(data / "ag_news" / "test.csv", encoding="utf-8", newline="") as f:
        rows = [(f"{title}. {desc}".replace("\\", " "), names[int(cls) - 1]) for cls, title, desc in csv.reader(f)]
    random.Random(0).shuffle(rows)
    half = len(rows) // 2
    return rows[:half], rows[half:]  # disjoint: examples from the first half, evaluation on the second


def load_sst2(data: Path) -> tuple[Rows, Rows]:
    def read(name: str) -> Rows:
        out = []
        for line in (data / "sst2_senteval" / name).read_text(encoding="utf-8").splitlines():
            if line.strip():
                text, label = line.rsplit("\t", 1)
                out.append((text.strip(), {"0": "negative", "1": "positive"}[label.strip()]))
        return out

    return read("sentiment-train"), read("sentiment-test")


DATASETS = {"trec_qc": load_trec, "banking77": load_banking77, "ag_news": load_ag_news, "sst2_senteval": load_sst2}
# Published reference points (from each SOURCE.md; fully supervised or different few-shot protocols).
REFERENCES = {
    "trec_qc": "Kim 2014 CNN-rand 91.2 (full train)",
    "banking77": "Casanueva 2020: BERT full 93.66; USE+ConveRT 10-shot 85.19",
    "ag_news": "fastText 91.5 (full 120k train)",
    "sst2_senteval": "Kim 2014 CNN-multichannel 88.1; BERT-base 93.5",
}


def cap(rows: Rows, n: int, seed: int = 0) -> Rows:
    return rows if len(rows) <= n else random.Random(seed).sample(rows, n)


def few_shot(pool: Rows, per_label: int, seed: int) -> Rows:
    by_label: dict[str, Rows] = defaultdict(list)
    for row in pool:
        by_label[row[1]].append(row)
    rng = random.Random(seed)
    out: Rows = []
    for label in sorted(by_label):
        items = by_label[label]
        out += items if len(items) <= per_label else rng.sample(items, per_label)
    return out


# ---- scoring ---------------------------------------------------------------------------------------------
class MemoEmbedder:
    """The real embedder behind a per-text memo, so each distinct text is embedded once per dataset."""

    def __init__(self, embedder) -> None:
        self.inner = embedder
        self.name, self.dim = embedder.name, embedder.dim
        self.memo: dict[str, np.ndarray] = {}
        self.seconds = 0.0
        self.embedded = 0

    def prime(self, texts: list[str], batch_size: int = 64) -> None:
        todo = list(dict.fromkeys(t for t in texts if t not in self.memo))
        if todo:
            start = time.perf_counter()
            vectors = self.inner.encode(todo, batch_size=batch_size)
            self.seconds += time.perf_counter() - start
            self.embedded += len(todo)
            self.memo.update(zip(todo, vectors))

    def encode(self, texts: list[str], batch_size: int = 64) -> np.ndarray:
        self.prime(texts, batch_size)
        return np.stack([self.memo[t] for t in texts]).astype(np.float32)


def macro_f1(gold: list[str], pred: list[str]) -> float:
    scores = []
    for label in sorted(set(gold)):
        tp = sum(g == p == label for g, p in zip(gold, pred))
        fp = sum(p == label != g for g, p in zip(gold, pred))
        fn = sum(g == label != p for g, p in zip(gold, pred))
        scores.append(2 * tp / (2 * tp + fp + fn) if tp else 0.0)
    return float(np.mean(scores))


def accuracy(gold: list[str], pred: list[str]) -> float:
    return float(np.mean([g == p for g, p in zip(gold, pred)]))


def evaluate(examples: Rows, test: Rows, memo: MemoEmbedder) -> dict:
    gold = [label for _, label in test]
    queries = [text for text, _ in test]
    clf = Classifier([LabeledExample(t, lab) for t, lab in examples], memo, cache=False)
    results = clf.classify(queries)
    pred = [r.label for r in results]
    out = {
        "sixfold": {"accuracy": accuracy(gold, pred), "macro_f1": macro_f1(gold, pred)},
        "mean_top_score": float(np.mean([r.score for r in results])),
    }
    for variant, k in (("1-nn", 1), ("top-10", 10)):
        other = [r.label for r in clf.classify(queries, top_per_label=k)]
        out[variant] = {"accuracy": accuracy(gold, other), "macro_f1": macro_f1(gold, other)}
    centroids = np.stack([clf.vectors[clf.label_index == i].mean(axis=0) for i in range(len(clf.labels))])
    centroids /= np.linalg.norm(centroids, axis=1, keepdims=True)
    cen = [clf.labels[i] for i in np.argmax(memo.encode(queries) @ centroids.T, axis=1)]
    out["centroid"] = {"accuracy": accuracy(gold, cen), "macro_f1": macro_f1(gold, cen)}
    return out


def summarise(runs: list[dict]) -> dict:
    out: dict = {"seeds": len(runs), "mean_top_score": statistics.mean(r["mean_top_score"] for r in runs)}
    for scorer in ("sixfold", "centroid", "1-nn", "top-10"):
        for metric in ("accuracy", "macro_f1"):
            values = [r[scorer][metric] for r in runs]
            out[f"{scorer}_{metric}"] = statistics.mean(values)
            out[f"{scorer}_{metric}_std"] = statistics.stdev(values) if len(values) > 1 else 0.0
    return out


def latency(examples: Rows, queries: list[str], embedder) -> dict:
    """classify([query]) one at a time: the real embedder, no memo, examples embedded once up front."""
    clf = Classifier([LabeledExample(t, lab) for t, lab in examples], embedder, cache=False)
    clf.classify(queries[:2])  # warm-up
    times = []
    for query in queries:
        start = time.perf_counter()
        clf.classify([query])
        times.append((time.perf_counter() - start) * 1000)
    return {
        "examples": len(examples),
        "queries": len(queries),
        "median_ms": statistics.median(times),
        "p90_ms": float(np.percentile(times, 90)),
    }


# ---- main ------------------------------------------------------------------------------------------------
def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small caps, one seed, 8 shots + all: a smoke run")
    parser.add_argument("--datasets", nargs="+", choices=list(DATASETS), default=list(DATASETS))
    add_data_argument(parser)
    parser.add_argument("--test-cap", type=int, default=1000, help="evaluation items per dataset (default 1000)")
    parser.add_argument("--pool-cap", type=int, default=5000, help="example pool for 'all' (default 5000)")
    parser.add_argument("--latency-queries", type=int, default=50)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1: fastest on a shared 2-core box)")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "classify_eval.json"))
    args = parser.parse_args()
    check_data(parser, args.data, *args.datasets)

    import torch

    torch.set_num_threads(args.threads)
    shots: list[int | str] = [8, 16, "all"]
    seeds = SEEDS
    if args.quick:
        args.test_cap, args.pool_cap, args.latency_queries = min(args.test_cap, 200), min(args.pool_cap, 1000), 10
        shots, seeds = [8, "all"], (0,)

    embedder = load_embedder("all-MiniLM-L6-v2")
    embedder.encode(["warm up"])
    started = time.time()
    report: dict = {
        "date": dt.datetime.now().isoformat(timespec="seconds"),
        "machine": f"{platform.machine()} {os.cpu_count()} cores, {platform.system()}; torch threads {args.threads}",
        "loadavg_start": os.getloadavg(),
        "command": " ".join(["python", "bench/classify_eval.py", *sys.argv[1:]]),
        "model": embedder.name,
        "top_per_label": TOP_PER_LABEL,
        "temperature": TEMPERATURE,
        "test_cap": args.test_cap,
        "pool_cap": args.pool_cap,
        "seeds": list(seeds),
        "datasets": {},
    }
    rows_out = []
    for name in args.datasets:
        pool, test = DATASETS[name](args.data)
        full_pool, full_test = len(pool), len(test)
        pool, test = cap(pool, args.pool_cap), cap(test, args.test_cap)
        memo = MemoEmbedder(embedder)
        memo.prime([t for t, _ in pool] + [t for t, _ in test])
        entry = {
            "labels": len({lab for _, lab in pool}),
            "pool": len(pool),
            "pool_full": full_pool,
            "test": len(test),
            "test_full": full_test,
            "embed_texts_per_s": memo.embedded / memo.seconds if memo.seconds else None,
            "reference": REFERENCES[name],
            "settings": {},
        }
        for shot in shots:
            if shot == "all":
                runs = [evaluate(pool, test, memo)]
            else:
                runs = [evaluate(few_shot(pool, shot, seed), test, memo) for seed in seeds]
            summary = summarise(runs)
            entry["settings"][str(shot)] = summary
            rows_out.append((name, str(shot), summary))
            print(
                f"{name:14s} {shot!s:>4}  sixfold acc {summary['sixfold_accuracy']:.3f}±{summary['sixfold_accuracy_std']:.3f} "
                f"F1 {summary['sixfold_macro_f1']:.3f} | centroid acc {summary['centroid_accuracy']:.3f} "
                f"F1 {summary['centroid_macro_f1']:.3f} | 1-nn acc {summary['1-nn_accuracy']:.3f} "
                f"| top-10 acc {summary['top-10_accuracy']:.3f} "
                f"| mean top score {summary['mean_top_score']:.2f}",
                flush=True,
            )
        entry["latency"] = latency(pool, [t for t, _ in test[: args.latency_queries]], embedder)
        print(f"{name:14s} latency: median {entry['latency']['median_ms']:.1f} ms/query over {len(pool)} examples", flush=True)
        report["datasets"][name] = entry
    report["seconds"] = time.time() - started
    report["loadavg_end"] = os.getloadavg()

    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")

    print()
    print(
        "| dataset | examples/label | sixfold acc | sixfold macro-F1 | centroid acc | centroid macro-F1 | 1-NN acc | top-10 acc |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for name, shot, s in rows_out:
        sd = f" ± {s['sixfold_accuracy_std']:.3f}" if s["seeds"] > 1 else ""
        print(
            f"| {name} | {shot} | {s['sixfold_accuracy']:.3f}{sd} | {s['sixfold_macro_f1']:.3f} | "
            f"{s['centroid_accuracy']:.3f} | {s['centroid_macro_f1']:.3f} | "
            f"{s['1-nn_accuracy']:.3f} | {s['top-10_accuracy']:.3f} |"
        )
    print(f"\nwrote {out} in {report['seconds']:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
