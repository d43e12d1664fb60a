"""Domain adaptation, proven downstream: masked-LM on SubjQA electronics *train* reviews (``tune domain``), then a
reader tuned on SubjQA train from that encoder vs. from the packaged encoder, both scored on SubjQA test.

Same data, subsets and reader recipe as bench/reader_subjqa.py (which it reuses); the masked-LM step is capped at
``--mlm-steps`` per phase to fit the 2-core box. Writes bench/results/domain_subjqa.json.

    nice -n 5 python bench/domain_subjqa.py [--mlm-steps 100]
"""

from __future__ import annotations

import argparse
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
sys.path.insert(0, str(REPO / "bench"))

from reader_subjqa import CACHE, subjqa, write_jsonl  # noqa: E402

from sixfold.core.models import DEFAULT_EMBEDDER, resolve_model  # noqa: E402
from sixfold.tuner.domain import DomainTrainConfig, tune_domain  # noqa: E402
from sixfold.tuner.reader import ReaderTrainConfig, tune_reader  # noqa: E402

from benchdata import add_data_argument, check_data  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--domain", default="electronics")
    ap.add_argument("--train", type=int, default=400)
    ap.add_argument("--test", type=int, default=150)
    ap.add_argument("--mlm-steps", type=int, default=100)
    ap.add_argument("--out", default=str(REPO / "bench" / "results" / "domain_subjqa.json"))
    add_data_argument(ap)
    args = ap.parse_args()
    check_data(ap, args.data, Path("subjqa") / args.domain)
    work = CACHE / "domain_subjqa"
    work.mkdir(parents=True, exist_ok=True)
    train_all, test_all = subjqa("train", args.domain, args.data), subjqa("test", args.domain, args.data)
    train = random.Random(0).sample(train_all, min(args.train, len(train_all)))
    test = random.Random(0).sample(test_all, min(args.test, len(test_all)))
    write_jsonl(train, work / "train.jsonl")
    write_jsonl(test, work / "test.jsonl")

    # raw text for masked-LM: every review of the train split (all questions, answerable or not), one file each
    import pandas as pd

    reviews = pd.read_csv(args.data / "subjqa" / args.domain / "train.csv.gz")
    test_reviews = {e.context.strip() for e in test_all}
    texts = sorted({r.removesuffix("ANSWERNOTFOUND").strip() for r in reviews.review} - test_reviews)
    corpus = work / "reviews"
    shutil.rmtree(corpus, ignore_errors=True)
    corpus.mkdir()
    for i, text in enumerate(texts):
        (corpus / f"review_{i:05d}.txt").write_text(text)

    index = CACHE / "subjqa_idx"
    if not (index / "sixfold-index.json").is_file():
        from sixfold.engine import Engine

        Engine.open(index).index(REPO / "examples" / "corpus")
    shutil.rmtree(index / "models", ignore_errors=True)
    results: dict = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": f"{os.cpu_count()} cores",
        "domain": args.domain,
        "reviews": len(texts),
        "train_questions": len(train),
        "test_questions": len(test),
    }
    t0 = time.perf_counter()
    mlm = DomainTrainConfig(max_steps=args.mlm_steps, batch_size=16, learning_rate=1e-4)
    domain = tune_domain(corpus, index, config=mlm, activate="yes")
    results["mlm"] = {
        "config": mlm.__dict__,
        "before": domain.before,
        "after": domain.after,
        "train_chunks": domain.train_chunks,
        "eval_chunks": domain.eval_chunks,
        "seconds": time.perf_counter() - t0,
    }
    print("mlm", domain.before, domain.after, flush=True)

    config = ReaderTrainConfig(epochs=1.0, learning_rate=1e-4, batch_size=16, max_length=256, stride=64)
    for name, base in (("from_domain", f"domain@{domain.version}"), ("from_base", resolve_model(DEFAULT_EMBEDDER).path)):
        t0 = time.perf_counter()
        result = tune_reader(
            index, work / "train.jsonl", work / "test.jsonl", base=base, config=config, activate="no", eval_limit=len(test)
        )
        results[name] = {"before": result.before, "after": result.after, "seconds": time.perf_counter() - t0}
        print(name, result.after, flush=True)
    Path(args.out).write_text(json.dumps(results, indent=2))
    print(f"{'reader tuned on SubjQA train, starting from':<48} {'EM':>6} {'F1':>6}")
    for name, label in (("from_base", "packaged encoder"), ("from_domain", "encoder after masked-LM on train reviews")):
        print(f"{label:<48} {results[name]['after']['EM']:6.1f} {results[name]['after']['F1']:6.1f}")


if __name__ == "__main__":
    main()
