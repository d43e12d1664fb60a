"""Reader benchmark on SQuAD v1.1 dev: extractive EM/F1 with the gold paragraph, open-book end to end,
retrieval recall@k, abstention calibration, and latency per question.

Held-out split: articles are sorted by title; even positions are the "train half" (used by
`tuner/reader.py` to make a reader), odd positions are evaluated here, so no test question was seen in training.

  python bench/squad_eval.py --reader /path/to/qa-model [--limit 300] [--gen-limit 40]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sixfold.engine import Engine  # noqa: E402
from sixfold.reader.answer import MIN_EVIDENCE, answer_question  # noqa: E402
from sixfold.reader.extractive import load_extractive  # noqa: E402
from sixfold.reader.metrics import exact_match, f1_score  # noqa: E402
from sixfold.reader.types import Passage  # noqa: E402
from sixfold.tuner.data import load_qa_file  # noqa: E402

from benchdata import add_data_argument, data_path  # noqa: E402  (bench/ is sys.path[0])

SQUAD = "squad_v1.1_dev/dev-v1.1.json"  # relative to --data


def split_halves(examples):
    titles = sorted({e.title for e in examples})
    held_out = set(titles[1::2])
    return [e for e in examples if e.title not in held_out], [e for e in examples if e.title in held_out]


def write_paragraphs(examples, folder: Path) -> dict[str, str]:
    """One .txt file per distinct paragraph; returns context -> relative path."""
    paths: dict[str, str] = {}
    for e in examples:
        if e.context not in paths:
            rel = f"{e.title}/p{len([p for p in paths.values() if p.startswith(e.title + '/')]):03d}.txt"
            (folder / e.title).mkdir(parents=True, exist_ok=True)
            (folder / rel).write_text(e.context, encoding="utf-8")
            paths[e.context] = rel
    return paths


def pct(values, q):
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))] if values else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--squad", help=f"SQuAD v1.1 dev JSON (default: <--data>/{SQUAD})")
    add_data_argument(parser)
    parser.add_argument("--reader", help="extractive QA model folder (skips extractive parts when absent)")
    parser.add_argument("--limit", type=int, default=300, help="held-out questions for the extractive parts")
    parser.add_argument("--gen-limit", type=int, default=30, help="questions for the (slow) generative reader")
    parser.add_argument("-k", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="bench/results/squad_eval.json")
    args = parser.parse_args()
    args.squad = data_path(parser, args.data, args.squad, SQUAD)

    examples = load_qa_file(args.squad)
    train_half, held_out = split_halves(examples)
    rng = random.Random(args.seed)
    sample = rng.sample(held_out, min(args.limit, len(held_out)))
    results: dict = {
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
        "k": args.k,
        "held_out_questions": len(sample),
        "date": time.strftime("%Y-%m-%d"),
    }

    reader = load_extractive(args.reader) if args.reader else None
    if reader:
        em, f1, lat = [], [], []
        for e in sample:
            t = time.perf_counter()
            text, _score, _c = reader.answer(e.question, [Passage(0, e.context, "gold")])
            lat.append(time.perf_counter() - t)
            gold = [a["text"] for a in e.answers]
            em.append(exact_match(text, gold))
            f1.append(f1_score(text, gold))
        results["gold_paragraph"] = {
            "EM": 100 * statistics.mean(em),
            "F1": 100 * statistics.mean(f1),
            "p50_s": pct(lat, 0.5),
            "reader": args.reader,
        }
        gold_scores = results["gold_paragraph"]
        print(f"gold paragraph ({len(sample)} q): EM {gold_scores['EM']:.1f}  F1 {gold_scores['F1']:.1f}")

    with tempfile.TemporaryDirectory() as tmp:
        corpus, index = Path(tmp) / "corpus", Path(tmp) / "idx"
        corpus.mkdir()
        # The corpus is the held-out half: its questions are answerable; the other half's are not.
        paths = write_paragraphs(held_out, corpus)
        engine = Engine.open(index)
        t = time.perf_counter()
        report = engine.index(corpus)
        results["index"] = {"paragraphs": len(paths), "chunks": report.chunks_added, "seconds": time.perf_counter() - t}
        print(f"indexed {len(paths)} paragraphs, {report.chunks_added} chunks in {results['index']['seconds']:.0f} s")

        recall, evidence_in, lat_retrieval = {1: [], 5: [], 10: []}, [], []
        for e in sample:
            t = time.perf_counter()
            passages = engine.passages(e.question, 10)
            lat_retrieval.append(time.perf_counter() - t)
            ranked = [p.path for p in passages]
            for kk in recall:
                recall[kk].append(float(paths[e.context] in ranked[:kk]))
            evidence_in.append(max(p.dense for p in passages[: args.k]))
        results["retrieval"] = {f"recall@{kk}": 100 * statistics.mean(v) for kk, v in recall.items()}
        results["retrieval"]["p50_s"] = pct(lat_retrieval, 0.5)
        print("retrieval:", {k: round(v, 3) for k, v in results["retrieval"].items()})

        absent = rng.sample(train_half, min(len(sample), len(train_half)))
        evidence_out = [max(p.dense for p in engine.passages(e.question, args.k)) for e in absent]
        best = max(
            (sum(x >= th for x in evidence_in) + sum(x < th for x in evidence_out), th) for th in [i / 100 for i in range(0, 80)]
        )
        at_default = sum(x >= MIN_EVIDENCE for x in evidence_in) + sum(x < MIN_EVIDENCE for x in evidence_out)
        total = len(evidence_in) + len(evidence_out)
        results["abstention"] = {
            "answerable_median_cosine": statistics.median(evidence_in),
            "absent_median_cosine": statistics.median(evidence_out),
            "best_threshold": best[1],
            "best_accuracy": 100 * best[0] / total,
            "default_threshold": MIN_EVIDENCE,
            "default_accuracy": 100 * at_default / total,
            "answered_when_answerable_at_default": 100 * sum(x >= MIN_EVIDENCE for x in evidence_in) / len(evidence_in),
            "abstained_when_absent_at_default": 100 * sum(x < MIN_EVIDENCE for x in evidence_out) / len(evidence_out),
        }
        print("abstention:", {k: round(v, 3) for k, v in results["abstention"].items()})

        if reader:
            em, f1, lat, answered = [], [], [], 0
            for e in sample:
                t = time.perf_counter()
                answer = answer_question(e.question, engine.passages(e.question, args.k), "extractive", extractive=reader)
                lat.append(time.perf_counter() - t)
                gold = [a["text"] for a in e.answers]
                answered += answer.found
                em.append(exact_match(answer.answer if answer.found else "", gold))
                f1.append(f1_score(answer.answer if answer.found else "", gold))
            results["open_book_extractive"] = {
                "EM": 100 * statistics.mean(em),
                "F1": 100 * statistics.mean(f1),
                "answered_pct": 100 * answered / len(sample),
                "p50_s": pct(lat, 0.5),
                "p95_s": pct(lat, 0.95),
            }
            print("open book extractive:", {k: round(v, 3) for k, v in results["open_book_extractive"].items()})

        if args.gen_limit:
            em, f1, lat, cited_right = [], [], [], []
            for e in sample[: args.gen_limit]:
                t = time.perf_counter()
                answer = engine.ask(e.question, args.k, mode="generative")
                lat.append(time.perf_counter() - t)
                gold = [a["text"] for a in e.answers]
                em.append(exact_match(answer.answer if answer.found else "", gold))
                f1.append(f1_score(answer.answer if answer.found else "", gold))
                cited_right.append(float(any(c.path == paths[e.context] for c in answer.citations)))
            results["open_book_generative"] = {
                "questions": len(lat),
                "EM": 100 * statistics.mean(em),
                "F1": 100 * statistics.mean(f1),
                "cites_gold_paragraph_pct": 100 * statistics.mean(cited_right),
                "p50_s": pct(lat, 0.5),
                "p95_s": pct(lat, 0.95),
            }
            print("open book generative:", {k: round(v, 3) for k, v in results["open_book_generative"].items()})
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
