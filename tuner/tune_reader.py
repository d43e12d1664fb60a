"""`sixfold tune reader`: validate data, score the current reader, train, score again, save a version.

The eval split is scored before and after with SQuAD EM/F1 given each question's own context; the new
version becomes active only if it is better on eval (or when the user says so), and the table says which.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from indexer.embedding import choose_device
from indexer.errors import SixfoldError
from indexer.models import DEFAULT_EMBEDDER, resolve_model
from reader.extractive import ExtractiveReader
from reader.metrics import exact_match, f1_score
from reader.types import Passage
from tuner.guard import check_trainable_here
from tuner.qa_data import QAExample, load_qa_file, overlap
from tuner.reader import ReaderTrainConfig, train_reader
from tuner.versions import Registry, TuneOutcome, parse_version, saving


@dataclass
class TuneResult(TuneOutcome):
    metric: ClassVar[str] = "F1"

    train_examples: int
    eval_examples: int
    overlap: int


def evaluate_reader(model_path: str, examples: list[QAExample], name: str = "reader") -> dict[str, float]:
    """EM/F1 (0-100) of a span reader given each question's own context."""
    reader = ExtractiveReader(name, model_path, choose_device())
    em, f1 = [], []
    for e in examples:
        text, _score, _c = reader.answer(e.question, [Passage(0, e.context, "eval")])
        gold = [a["text"] for a in e.answers]
        em.append(exact_match(text, gold))
        f1.append(f1_score(text, gold))
    return {"EM": 100 * statistics.mean(em), "F1": 100 * statistics.mean(f1)}


def tune_reader(
    index_root: str | Path,
    train_file: str | Path,
    eval_file: str | Path,
    *,
    base: str | None = None,
    config: ReaderTrainConfig | None = None,
    activate: str = "auto",
    eval_limit: int = 500,
    callbacks: list | None = None,
    force: bool = False,
) -> TuneResult:
    """Train a new reader version in the index's registry; ``activate``: auto (if better), yes or no."""
    if activate not in ("auto", "yes", "no"):
        raise SixfoldError(f"--activate takes auto, yes or no, not {activate}")
    train = load_qa_file(train_file)
    if not Path(eval_file).is_file():
        raise SixfoldError(f"eval file {eval_file} does not exist")
    evaluation = load_qa_file(eval_file)[:eval_limit]
    shared = overlap(train, evaluation)
    registry = Registry(index_root)
    if base and base.startswith(("reader@", "domain@")):
        role, number = parse_version(base)
        base_path = str(registry.version_dir(role, number)) if number is not None else resolve_model(DEFAULT_EMBEDDER).path
    elif base:
        base_path = resolve_model(base, role="reader").path
    else:  # the active reader, else an active domain-adapted encoder, else the packaged encoder
        base_path = registry.active_path("reader") or registry.active_path("domain") or resolve_model(DEFAULT_EMBEDDER).path
    check_trainable_here(base_path, force)
    before = evaluate_reader(base_path, evaluation)
    number, tmp = registry.new_version_dir("reader")
    work = registry.root / ".work" / "reader"
    with saving("reader", tmp):
        train_reader(base_path, train, work, tmp, config, callbacks)
        after = evaluate_reader(str(tmp), evaluation)
    better = after["F1"] > before["F1"]
    do_activate = activate == "yes" or (activate == "auto" and better)
    info = {
        "base": base_path,
        "eval": after,
        "eval_before": before,
        "train_file": str(train_file),
        "eval_file": str(eval_file),
        "train_examples": len(train),
        "eval_examples": len(evaluation),
    }
    with saving("reader", tmp):
        final = registry.add("reader", number, tmp, info, do_activate)
    return TuneResult("reader", number, str(final), base_path, before, after, do_activate, len(train), len(evaluation), shared)
