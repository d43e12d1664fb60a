"""`sixfold tune reader`: an extractive reader (a span-prediction head on an encoder) trained on QA pairs with
transformers' Trainer, scored before and after, saved as a version in the index's registry.

Training: full fine-tuning by default; ``lora=True`` trains low-rank adapters plus the span head instead (PEFT),
which keeps the saved delta small. Seeds are fixed; checkpoints are written so an interrupted run can resume.

Tuning: the eval split is scored before and after with SQuAD EM/F1 given each question's own context; the new
version becomes active only if it is better on eval (or when the user says so), and the table says which.
"""

from __future__ import annotations

import os
import shutil
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from sixfold.core.device import choose_device
from sixfold.core.errors import SixfoldError
from sixfold.core.models import DEFAULT_EMBEDDER, resolve_model
from sixfold.reader.extractive import ExtractiveReader, question_windows
from sixfold.reader.metrics import exact_match, f1_score
from sixfold.reader.types import Passage
from sixfold.tuner.data import QAExample, load_qa_file, qa_overlap
from sixfold.tuner.training import (
    check_activate,
    check_trainable_here,
    latest_checkpoint,
    quiet_trainer,
    should_activate,
    trainer_settings,
)
from sixfold.tuner.versions import Registry, TuneOutcome, parse_version, saving

EVAL_LIMIT = 500  # eval questions scored before and after (the first ones of the eval file)


@dataclass
class ReaderTrainConfig:
    epochs: float = 2.0
    learning_rate: float = 1e-4
    batch_size: int = 16
    max_length: int = 256
    stride: int = 64
    warmup_ratio: float = 0.1
    weight_decay: float = 0.01
    seed: int = 42
    max_steps: int = -1
    save_steps: int = 50  # a checkpoint every N steps: what a killed run resumes from
    lora: bool = False
    lora_rank: int = 16


def train_features(examples: list[QAExample], tokenizer, max_length: int = 384, stride: int = 128) -> dict:
    """Tokenised windows with start/end token positions of the first answer (the usual SQuAD recipe).

    Long contexts are split into overlapping windows; a window that does not contain the answer points at
    the [CLS] token, as in the original BERT fine-tuning.
    """
    enc = question_windows(
        tokenizer, [e.question for e in examples], [e.context for e in examples], max_length, stride, padding="max_length"
    )
    sample_map = enc.pop("overflow_to_sample_mapping")
    offsets_all = enc.pop("offset_mapping")
    starts, ends = [], []
    for i, offsets in enumerate(offsets_all):
        example = examples[sample_map[i]]
        answer = example.answers[0]
        start_char = answer["answer_start"]
        end_char = start_char + len(answer["text"])
        sequence_ids = enc.sequence_ids(i)
        ctx_start = sequence_ids.index(1)
        ctx_end = len(sequence_ids) - 1 - sequence_ids[::-1].index(1)
        if offsets[ctx_start][0] > start_char or offsets[ctx_end][1] < end_char:
            starts.append(0)
            ends.append(0)
            continue
        s = ctx_start
        while s <= ctx_end and offsets[s][0] <= start_char:
            s += 1
        e = ctx_end
        while e >= ctx_start and offsets[e][1] >= end_char:
            e -= 1
        starts.append(s - 1)
        ends.append(e + 1)
    enc["start_positions"] = starts
    enc["end_positions"] = ends
    return dict(enc)


class _Features:
    """Tokenised training windows as a map-style dataset (the Trainer needs only ``len`` and ``[i]``)."""

    def __init__(self, features: dict) -> None:
        self.features = features
        self.n = len(features["input_ids"])

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> dict:
        import torch

        return {k: torch.tensor(v[i]) for k, v in self.features.items()}


def train_reader(
    base_model: str,
    examples: list[QAExample],
    work_dir: str | Path,
    save_to: str | Path,
    config: ReaderTrainConfig | None = None,
    callbacks: list | None = None,
    resume: bool = True,
) -> Path:
    """Train a span reader from ``base_model`` (any encoder folder) on ``examples`` and save it to ``save_to``.

    Checkpoints go to ``work_dir`` (kept until the model is saved), so a killed run resumes where it stopped.
    """
    import torch
    from transformers import AutoModelForQuestionAnswering, AutoTokenizer, Trainer, TrainingArguments, set_seed

    config = config or ReaderTrainConfig()
    set_seed(config.seed)
    work_dir, save_to = Path(work_dir), Path(save_to)
    tokenizer = AutoTokenizer.from_pretrained(base_model, local_files_only=True)
    # fp32 master weights whatever the checkpoint stores (see tuner/training.py)
    model = AutoModelForQuestionAnswering.from_pretrained(base_model, local_files_only=True, dtype=torch.float32)
    if config.lora:
        from peft import LoraConfig, TaskType, get_peft_model

        model = get_peft_model(
            model,
            LoraConfig(
                task_type=TaskType.QUESTION_ANS,
                r=config.lora_rank,
                lora_alpha=2 * config.lora_rank,
                lora_dropout=0.05,
                target_modules=["query", "key", "value", "dense"],
            ),
        )
    features = _Features(train_features(examples, tokenizer, config.max_length, config.stride))
    args = TrainingArguments(
        output_dir=str(work_dir),
        num_train_epochs=config.epochs,
        max_steps=config.max_steps,
        learning_rate=config.learning_rate,
        per_device_train_batch_size=config.batch_size,
        warmup_steps=config.warmup_ratio,
        weight_decay=config.weight_decay,
        seed=config.seed,
        logging_steps=5,
        save_strategy="steps",
        save_steps=config.save_steps,
        save_total_limit=1,
        **trainer_settings(),
    )
    trainer = Trainer(model=model, args=args, train_dataset=features, callbacks=callbacks or [])
    quiet_trainer(trainer)
    trainer.train(resume_from_checkpoint=latest_checkpoint(work_dir) if resume else None)
    if config.lora:
        model = model.merge_and_unload()
    model.save_pretrained(str(save_to))
    tokenizer.save_pretrained(str(save_to))
    shutil.rmtree(work_dir, ignore_errors=True)
    return save_to


@dataclass
class ReaderTuneResult(TuneOutcome):
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
    train_file: str | os.PathLike[str],
    eval_file: str | os.PathLike[str],
    *,
    base: str | None = None,
    config: ReaderTrainConfig | None = None,
    activate: str = "auto",
    eval_limit: int = EVAL_LIMIT,
    callbacks: list | None = None,
    force: bool = False,
) -> ReaderTuneResult:
    """Train a new reader version in the index's registry; ``activate``: auto (if better), yes or no."""
    check_activate(activate)
    train = load_qa_file(train_file)
    if not Path(eval_file).is_file():
        raise SixfoldError(f"eval file {eval_file} does not exist")
    evaluation = load_qa_file(eval_file)[:eval_limit]
    shared = qa_overlap(train, evaluation)
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
    do_activate = should_activate(activate, ReaderTuneResult.better(before, after))
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
    return ReaderTuneResult(
        "reader", number, str(final), base_path, before, after, do_activate, len(train), len(evaluation), shared
    )
