"""`sixfold tune generator` on three domain sets, one per row format: the base language model against its LoRA-tuned
version on held-out rows (task metric and perplexity), and whether llama.cpp and transformers agree on the tuned model.

    python bench/tune_generator.py [--tasks trec,pubmedqa,covidqa] [--base qwen2.5-coder-0.5b-instruct]
                                   [--train-rows 100] [--eval-rows N] [--epochs E]

- ``trec`` ({prompt, completion} rows): TREC-6 question type as one word (abbreviation, entity, description, human,
  location, number); training rows sampled (seed 0) from train_5500, eval rows from the TREC-10 test questions.
- ``pubmedqa`` (chat {messages} rows): yes / no / maybe for a biomedical question given its abstract (cut to its first
  ``ABSTRACT_WORDS`` words); training rows from the 500 PQA-L items outside the official test split, eval rows
  from the test split.
- ``covidqa`` (QA pairs with passages): COVID-QA questions over their papers, as ``ask`` prompts them (numbered
  sentences, ``ANSWER: ... [n]`` or ``NOT FOUND``); articles are split in two disjoint halves (seed 0), training
  questions from the first, eval questions from the second. Scored by EM/F1 of the parsed answer.

Each task trains into the registry of a scratch index (the bundled example corpus). Writes
bench/results/tune_generator.json.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import random
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchdata import add_data_argument, check_data  # noqa: E402

TREC_NAMES = {"ABBR": "abbreviation", "ENTY": "entity", "DESC": "description", "HUM": "human", "LOC": "location", "NUM": "number"}
TREC_PROMPT = "Classify the question as abbreviation, entity, description, human, location or number.\nQuestion: {q}\nType:"
PUBMED_SYSTEM = "You answer biomedical research questions from the abstract given. Reply with one word: yes, no or maybe."
ABSTRACT_WORDS = 100  # about 150 tokens: training on 2 CPU cores costs about 0.1 s per token of a batch


def trec_rows(data: Path, n_train: int, n_eval: int) -> tuple[list[dict], list[dict]]:
    def read(name: str) -> list[dict]:
        rows = []
        for line in (data / "trec_qc" / name).read_text(encoding="latin-1").splitlines():
            if line.strip():
                label, text = line.split(" ", 1)
                rows.append({"prompt": TREC_PROMPT.format(q=text.strip()), "completion": " " + TREC_NAMES[label.split(":")[0]]})
        return rows

    train, test = read("train_5500.label"), read("TREC_10.label")
    random.Random(0).shuffle(train)
    random.Random(0).shuffle(test)
    return train[:n_train], test[:n_eval]


def pubmed_rows(data: Path, n_train: int, n_eval: int) -> tuple[list[dict], list[dict]]:
    items = json.loads((data / "pubmedqa" / "ori_pqal.json").read_text())
    test_ids = set(json.loads((data / "pubmedqa" / "test_ground_truth.json").read_text()))

    def row(item: dict) -> dict:
        abstract = " ".join(" ".join(item["CONTEXTS"]).split()[:ABSTRACT_WORDS])
        user = f"Abstract: {abstract}\n\nQuestion: {item['QUESTION']}"
        return {
            "messages": [
                {"role": "system", "content": PUBMED_SYSTEM},
                {"role": "user", "content": user},
                {"role": "assistant", "content": item["final_decision"]},
            ]
        }

    pool = [row(v) for k, v in sorted(items.items()) if k not in test_ids]
    test = [row(v) for k, v in sorted(items.items()) if k in test_ids]
    random.Random(0).shuffle(pool)
    random.Random(0).shuffle(test)
    return pool[:n_train], test[:n_eval]


def covid_rows(data: Path, n_train: int, n_eval: int) -> tuple[list[dict], list[dict]]:
    articles = json.loads((data / "covid_qa_early" / "200423_covidQA.json").read_text())["data"]
    random.Random(0).shuffle(articles)
    half = len(articles) // 2

    def rows(part: list[dict]) -> list[dict]:
        out = []
        for article in part:
            for paragraph in article["paragraphs"]:
                for qa in paragraph["qas"]:
                    answers = [a["text"] for a in qa.get("answers", []) if a["text"].strip()]
                    if answers:
                        out.append({"question": qa["question"], "context": paragraph["context"], "answers": answers})
        random.Random(0).shuffle(out)
        return out

    return rows(articles[:half])[:n_train], rows(articles[half:])[:n_eval]


# task -> (rows, data folder, max_length, epochs, eval rows)
TASKS = {
    "trec": (trec_rows, "trec_qc", 128, 2.0, 100),
    "pubmedqa": (pubmed_rows, "pubmedqa", 256, 1.0, 60),
    "covidqa": (covid_rows, "covid_qa_early", 640, 1.0, 40),
}


def write_jsonl(rows: list[dict], path: Path) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_data_argument(parser)
    parser.add_argument("--tasks", default="trec,pubmedqa", help="trec, pubmedqa, covidqa (covidqa: ~500-token prompts)")
    parser.add_argument("--base", default="qwen2.5-coder-0.5b-instruct")
    parser.add_argument("--train-rows", type=int, default=100)
    parser.add_argument("--eval-rows", type=int, help="default: per task (trec 100, pubmedqa 60, covidqa 40)")
    parser.add_argument("--epochs", type=float, help="default: per task (trec 2, pubmedqa 1, covidqa 1)")
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "tune_generator.json"))
    args = parser.parse_args()
    tasks = [t.strip() for t in args.tasks.split(",") if t.strip()]
    unknown = [t for t in tasks if t not in TASKS]
    if unknown:
        parser.error(f"unknown task(s) {', '.join(unknown)} (choose from {', '.join(TASKS)})")
    data = check_data(parser, args.data, *(TASKS[t][1] for t in tasks))

    from sixfold.engine import Engine
    from sixfold.tuner.generator import GeneratorTrainConfig
    from sixfold.tuner.generator_data import load_generator_file

    results = []
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        engine = Engine.open(root / "idx")
        engine.index(ROOT / "examples" / "corpus")
        for task in tasks:
            make, _folder, max_length, epochs, eval_rows = TASKS[task]
            epochs, eval_rows = args.epochs or epochs, args.eval_rows or eval_rows
            train, held = make(data, args.train_rows, eval_rows)
            rows = load_generator_file(write_jsonl(train, root / f"{task}-train.jsonl"))
            held_rows = load_generator_file(write_jsonl(held, root / f"{task}-eval.jsonl"))
            config = GeneratorTrainConfig(epochs=epochs, batch_size=args.batch_size, max_length=max_length)
            print(f"{task}: {len(rows)} train / {len(held_rows)} eval rows ({rows[0].kind}), {args.base}", flush=True)
            result = engine.tune_generator(
                rows,
                held_rows,
                base=args.base,
                config=config,
                activate="no",
                eval_limit=eval_rows,
                say=lambda m: print("  " + m, flush=True),
            )
            results.append({"task": task, **result.report(), "config": config.__dict__})

    print()
    header = f"{'task':10} {'rows':>5} {'format':10} {'metric':10} {'base':>8} {'tuned':>8} "
    header += f"{'ppl base':>9} {'ppl tuned':>9} {'agree':>6} {'s':>6}"
    print(header)
    print("-" * len(header))
    for r in results:
        metric = "accuracy" if "accuracy" in r["after"] else "F1" if "F1" in r["after"] else "perplexity"
        print(
            f"{r['task']:10} {r['train_rows']:>5} {r['data']:10} {metric:10} {r['before'].get(metric, 0):>8.3f} "
            f"{r['after'].get(metric, 0):>8.3f} {r['before']['perplexity']:>9.2f} {r['after']['perplexity']:>9.2f} "
            f"{r['runtimes_agree'] or '-':>6} {r['seconds']:>6.0f}"
        )
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    record = {
        "date": dt.date.today().isoformat(),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "command": "python bench/tune_generator.py " + " ".join(sys.argv[1:]),
        "base": args.base,
        "results": results,
    }
    out.write_text(json.dumps(record, indent=2))
    print(f"\nwrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
