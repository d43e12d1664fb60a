"""Fit and check the generative answer's confidence (reader/calibration.py) on held-out SQuAD v1.1 dev questions.

An index holds the paragraphs of a few held-out articles (the odd-positioned titles, never used to train a reader);
questions about them are answerable, questions about other held-out articles are not (on-topic-ish: same kind of
encyclopaedic text). Every question is read with the confidence gate off, so each answer's features and whether it
was right are recorded; then a logistic model is fitted (5-fold cross-validated predictions give the honest
reliability curve and ECE) and the threshold that keeps answers shown at >= 0.8 right >= 95 % is reported.

  python bench/calibrate_answers.py --model qwen2.5-coder-0.5b-instruct [--articles 6 --answerable 60 --unanswerable 30]
  python bench/calibrate_answers.py --model ... --rows bench/results/calibrate_answers.json   # refit a saved run

Prints a table, writes bench/results/calibrate_answers.json; paste the fitted weights into reader/calibration.py.
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

from squad_eval import split_halves, write_paragraphs  # noqa: E402

from sixfold.engine import Engine  # noqa: E402
from sixfold.reader.answer import answer_question  # noqa: E402
from sixfold.reader.calibration import FEATURES, WEIGHTS, Features, calibrated  # noqa: E402
from sixfold.reader.llm import load_llm  # noqa: E402
from sixfold.reader.metrics import exact_match, f1_score, normalize_answer  # noqa: E402
from sixfold.tuner.data import load_qa_file  # noqa: E402

from benchdata import add_data_argument, data_path  # noqa: E402  (bench/ is sys.path[0])

SQUAD = "squad_v1.1_dev/dev-v1.1.json"


def is_right(answer: str, golds: list[str]) -> bool:
    """Right: exact match, F1 >= 0.5, or the gold answer inside a short answer (a sentence around the span)."""
    norm = normalize_answer(answer)
    # exact_match and f1_score take a list of gold answers (given one string, they compared against its characters:
    # the labels of the fits before 2026-12-06 counted right only the answers that held a gold answer whole).
    return any(
        exact_match(answer, [g]) or f1_score(answer, [g]) >= 0.5 or bool(normalize_answer(g) and normalize_answer(g) in norm)
        for g in golds
    )


def reliability(probabilities: list[float], outcomes: list[bool], bins: int = 10) -> tuple[list[dict], float]:
    """Reliability bins (count, mean confidence, accuracy) and the expected calibration error."""
    table, ece, n = [], 0.0, len(probabilities)
    for b in range(bins):
        lo, hi = b / bins, (b + 1) / bins
        members = [i for i, p in enumerate(probabilities) if lo <= p < hi or (b == bins - 1 and p == 1.0)]
        if not members:
            continue
        confidence = statistics.fmean(probabilities[i] for i in members)
        accuracy = statistics.fmean(outcomes[i] for i in members)
        ece += len(members) / n * abs(confidence - accuracy)
        table.append({"bin": f"{lo:.1f}-{hi:.1f}", "n": len(members), "confidence": confidence, "accuracy": accuracy})
    return table, ece


def ask(args: argparse.Namespace, parser: argparse.ArgumentParser) -> list[dict]:
    """Ask the sampled questions with the confidence gate off; one row per question with its features."""
    random.seed(args.seed)
    examples = load_qa_file(data_path(parser, args.data, None, SQUAD))
    _, held_out = split_halves(examples)
    titles = sorted({e.title for e in held_out})
    random.shuffle(titles)
    indexed = set(titles[: args.articles])
    inside = [e for e in held_out if e.title in indexed]
    outside = [e for e in held_out if e.title not in indexed]
    # On-topic unanswerable questions, as a folder's are: paragraphs of the indexed articles left out of the index,
    # so the passages read are about the same subject but do not hold the answer.
    paragraphs = sorted({e.context for e in inside})
    random.shuffle(paragraphs)
    dropped = set(paragraphs[: args.dropped_paragraphs])
    on_topic = [e for e in inside if e.context in dropped]
    inside = [e for e in inside if e.context not in dropped]
    questions = [(e, True) for e in random.sample(inside, min(args.answerable, len(inside)))]
    questions += [(e, False) for e in random.sample(outside, min(args.unanswerable, len(outside)))]
    questions += [(e, False) for e in random.sample(on_topic, min(args.on_topic, len(on_topic)))]
    random.shuffle(questions)

    llm = load_llm(args.model)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        corpus = Path(tmp) / "corpus"
        write_paragraphs(inside, corpus)
        engine = Engine(Path(tmp) / "idx")
        engine.index(corpus)
        for n, (example, answerable) in enumerate(questions, 1):
            started = time.perf_counter()
            passages = engine.passages(example.question, args.k)
            answer = answer_question(
                example.question, passages, "generative", llm=llm, min_confidence=0.0, scorer=engine.sentence_scorer
            )
            seconds = time.perf_counter() - started
            golds = [a["text"] for a in example.answers]
            right = answerable and answer.found and is_right(answer.answer, golds)
            rows.append(
                {
                    "question": example.question,
                    "answerable": answerable,
                    "on_topic": not answerable and example.title in indexed,
                    "found": answer.found,
                    "answer": answer.answer,
                    "gold": golds,
                    "right": bool(right),
                    "features": answer.features,
                    "confidence_before": answer.confidence if answer.found else None,
                    "seconds": seconds,
                    "notes": answer.notes,
                }
            )
            print(f"[{n}/{len(questions)}] {seconds:5.1f}s {'ok ' if right else '-- '} {example.question[:70]}", flush=True)

    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_data_argument(parser)
    parser.add_argument("--model", required=True, help="language model (catalogue name, folder or GGUF file)")
    parser.add_argument("--articles", type=int, default=6)
    parser.add_argument("--answerable", type=int, default=60)
    parser.add_argument("--unanswerable", type=int, default=30)
    parser.add_argument("--on-topic", type=int, default=0, help="questions whose paragraph is left out of the index")
    parser.add_argument("--dropped-paragraphs", type=int, default=12, help="paragraphs left out for --on-topic")
    parser.add_argument("--k", type=int, default=4)
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "calibrate_answers.json"))
    parser.add_argument(
        "--rows", nargs="+", metavar="JSON", help="refit from the rows of saved runs (answers re-scored, the model not asked)"
    )
    parser.add_argument("--features", nargs="+", choices=FEATURES, help="fit on these features only (default: all)")
    args = parser.parse_args()

    if args.rows:
        rows = [row for saved in args.rows for row in json.loads(Path(saved).read_text())["rows"]]
        for row in rows:
            row["right"] = bool(row["answerable"] and row["found"] and is_right(row["answer"], row["gold"]))
    else:
        rows = ask(args, parser)
    scored = [r for r in rows if r["features"] is not None]
    used = [FEATURES.index(name) for name in (args.features or FEATURES)]
    vectors = [[v[i] for i in used] for v in (Features(**r["features"]).vector() for r in scored)]
    outcomes = [r["right"] for r in scored]
    fitted = list(WEIGHTS)
    cv: list[float] = [calibrated(Features(**r["features"])) for r in scored]
    if len(set(outcomes)) == 2 and len(scored) >= 10:
        from sklearn.linear_model import LogisticRegression
        from sklearn.model_selection import cross_val_predict

        model = LogisticRegression(C=1.0, max_iter=1000)
        folds = min(5, sum(outcomes), len(outcomes) - sum(outcomes))
        if folds >= 2:
            cv = list(cross_val_predict(model, vectors, outcomes, cv=folds, method="predict_proba")[:, 1])
        model.fit(vectors, outcomes)
        fitted = [float(model.intercept_[0])] + [0.0] * len(FEATURES)
        for i, weight in zip(used, model.coef_[0], strict=True):
            fitted[1 + i] = float(weight)
    bins, ece = reliability(cv, outcomes)
    shown = [o for p, o in zip(cv, outcomes, strict=True) if p >= 0.8]
    thresholds = {}
    unanswerable = sum(not r["answerable"] for r in rows)
    for t in (0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9):
        kept = [(o, r) for p, o, r in zip(cv, outcomes, scored, strict=True) if p >= t]
        answered_unanswerable = sum(not r["answerable"] for _, r in kept)
        thresholds[t] = {
            "answered": len(kept),
            "right": sum(o for o, _ in kept),
            "wrong": sum(not o for o, _ in kept),
            "unanswerable_answered": answered_unanswerable,
            "unanswerable_abstained_pct": 100 * (1 - answered_unanswerable / unanswerable) if unanswerable else None,
        }
    answerable = [r for r in rows if r["answerable"]]
    report = {
        "machine": f"{platform.node()} {os.cpu_count()} cores",
        "date": time.strftime("%Y-%m-%d"),
        "model": args.model,
        "questions": len(rows),
        "answerable": len(answerable),
        "unanswerable": unanswerable,
        "on_topic_unanswerable": sum(bool(r.get("on_topic")) for r in rows),
        "right_before_gate": sum(r["right"] for r in answerable),
        "verified_answers": len(scored),
        "features": list(args.features or FEATURES),
        "rows_from": args.rows,
        "weights": fitted,
        "ece_cv": ece,
        "bins": bins,
        "shown_at_0.8": {"n": len(shown), "right": sum(shown)},
        "thresholds": thresholds,
        "p50_seconds": statistics.median(r["seconds"] for r in rows),
        "rows": rows,
    }
    right = report["right_before_gate"]
    print(f"\nmodel {args.model}: {right}/{len(answerable)} answerable right before the gate; ECE {ece:.3f}")
    print(f"{'bin':<9}{'n':>4}{'conf':>7}{'acc':>7}")
    for b in bins:
        print(f"{b['bin']:<9}{b['n']:>4}{b['confidence']:>7.2f}{b['accuracy']:>7.2f}")
    print(f"{'threshold':<10}{'answered':>9}{'right':>7}{'wrong':>7}{'unans.':>7}{'unans. abstained':>18}")
    for t, v in thresholds.items():
        held = "" if v["unanswerable_abstained_pct"] is None else f"{v['unanswerable_abstained_pct']:.0f} %"
        print(f"{t:<10}{v['answered']:>9}{v['right']:>7}{v['wrong']:>7}{v['unanswerable_answered']:>7}{held:>18}")
    print("weights:", tuple(round(w, 3) for w in fitted), f"p50 {report['p50_seconds']:.1f} s")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
