"""Zero-shot classification (``sixfold classify --labels``): accuracy from label names alone, and from one-line label
descriptions, on the four sets of bench/classify_eval.py (same loaders and test caps), packaged all-MiniLM-L6-v2.

    python bench/zero_shot.py [--test-cap 500]

Label names are the datasets' own (BANKING77's ``card_arrival`` read as "card arrival"); the descriptions below were
written once from each dataset's SOURCE.md, not tuned on the test items. Writes bench/results/zero_shot.json.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from classify_eval import DATASETS, accuracy, cap  # noqa: E402

from benchdata import add_data_argument, check_data  # noqa: E402

DESCRIPTIONS = {
    "trec_qc": {
        "ABBR": "a question asking what an abbreviation or acronym stands for",
        "DESC": "a question asking for a definition, description, reason or manner",
        "ENTY": "a question asking for a thing, an animal, a product, a color, a language or another entity",
        "HUM": "a question asking which person, group or organization",
        "LOC": "a question asking where: a place, a country, a city, a location",
        "NUM": "a question asking how many, how much, when, a number, a date or a quantity",
    },
    "ag_news": {
        "World": "world news: politics, governments, wars and international affairs",
        "Sports": "sports news: games, teams, players and championships",
        "Business": "business news: companies, markets, the economy and finance",
        "Sci/Tech": "science and technology news: computers, the internet, software, space and research",
    },
    "sst2_senteval": {
        "negative": "a negative review: the movie was bad, boring, disappointing",
        "positive": "a positive review: the movie was good, moving, wonderful",
    },
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_data_argument(parser)
    parser.add_argument("--test-cap", type=int, default=500)
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "zero_shot.json"))
    args = parser.parse_args()
    data = check_data(parser, args.data, *DATASETS)

    from sixfold.indexer.embedding import load_embedder
    from sixfold.reader.classify import ZeroShotClassifier

    embedder = load_embedder("all-MiniLM-L6-v2")
    results = []
    for name, load in DATASETS.items():
        pool, test = load(data)
        test = cap(test, args.test_cap, 0)
        labels = sorted({label for _, label in pool})
        gold, texts = [label for _, label in test], [text for text, _ in test]
        described = DESCRIPTIONS.get(name, {})
        variants = {"names": [(label, label.replace("_", " ")) for label in labels]}
        if described:
            variants["descriptions"] = [(label, described[label]) for label in labels]
        row = {"dataset": name, "labels": len(labels), "test_items": len(test), "chance": 1 / len(labels)}
        for variant, pairs in variants.items():
            predicted = [r.label for r in ZeroShotClassifier(pairs, embedder).classify(texts)]
            row[variant] = accuracy(gold, predicted)
        results.append(row)
        print(json.dumps(row), flush=True)
    report = {"date": dt.datetime.now().isoformat(timespec="seconds"), "model": "all-MiniLM-L6-v2", "results": results}
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    print("\n| dataset | labels | chance | label names | descriptions |\n|---|---:|---:|---:|---:|")
    for r in results:
        described = f"{r['descriptions']:.3f}" if "descriptions" in r else "-"
        print(f"| {r['dataset']} | {r['labels']} | {r['chance']:.3f} | {r['names']:.3f} | {described} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
