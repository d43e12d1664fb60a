"""`sixfold tune domain`: domain-adaptive pre-training of the reader's encoder on raw text with masked-LM.

Text comes from the indexer's own loaders and chunker, so every format the index reads works here. 10 % of
the documents (of the chunks, when there are fewer than 10 documents) are held out and scored with masked-LM
perplexity (the same masks before and after: fixed seed).

The packaged MiniLM is a bare BertModel: its masked-LM head does not exist and starts random, so the perplexity
of the untouched model is meaningless (about the vocabulary size). The honest "before" is therefore the
original encoder, frozen, with only the head fitted to the text for the same number of steps (at a larger
learning rate, since the head starts from scratch); "after" trains the encoder and head together. Their
difference is what adapting the encoder bought. The saved version is a full encoder folder:
``sixfold tune reader --base domain@N`` starts from it (and ``tune reader`` does so by default when a
domain version is active and no reader is).
"""

from __future__ import annotations

import math
import random
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from sixfold.core.errors import SixfoldError
from sixfold.core.models import DEFAULT_EMBEDDER, resolve_model
from sixfold.tuner.training import (
    check_activate,
    check_trainable_here,
    latest_checkpoint,
    quiet_trainer,
    run_key,
    should_activate,
    trainer_settings,
)
from sixfold.tuner.versions import Registry, TuneOutcome, saving


@dataclass
class DomainTrainConfig:
    epochs: float = 1.0
    max_steps: int = -1
    learning_rate: float = 5e-5
    head_learning_rate: float = 1e-3  # the baseline's fresh head alone can take a much larger step
    batch_size: int = 16
    max_length: int = 128
    mlm_probability: float = 0.15
    holdout: float = 0.1
    seed: int = 42
    save_steps: int = 100


@dataclass
class DomainTuneResult(TuneOutcome):
    metric: ClassVar[str] = "perplexity"
    lower_is_better: ClassVar[bool] = True

    documents: int
    train_chunks: int
    eval_chunks: int
    skipped: list[tuple[str, str]]


class _Tokens:
    """Tokenised chunks as a map-style dataset (the Trainer needs only ``len`` and ``[i]``)."""

    def __init__(self, encodings: dict) -> None:
        self.encodings = encodings

    def __len__(self) -> int:
        return len(self.encodings["input_ids"])

    def __getitem__(self, i: int) -> dict:
        return {k: v[i] for k, v in self.encodings.items()}


def corpus_texts(folder: str | Path, tokenizer, max_tokens: int) -> tuple[list[list[str]], list[tuple[str, str]]]:
    """Chunk texts per document (loaders + chunker of the indexer, no overlap) and the files that were skipped."""
    from sixfold.indexer.chunking import Chunker
    from sixfold.indexer.loaders import LoadError, load_document
    from sixfold.indexer.pipeline import walk_folder

    source = Path(folder).expanduser()
    if not source.is_dir():
        raise SixfoldError(f"corpus folder {folder} does not exist" if not source.exists() else f"{folder} is not a folder")
    paths, _unsupported = walk_folder(source)
    chunker = Chunker(tokenizer, max_tokens, 0)
    documents, skipped = [], []
    for path in paths:
        try:
            chunks = [c.text for c in chunker.split(load_document(path)) if c.text.strip()]
        except LoadError as exc:
            skipped.append((str(path.relative_to(source)), str(exc)))
            continue
        if chunks:
            documents.append(chunks)
    if not documents:
        raise SixfoldError(f"corpus folder {folder} has no readable text (supported: .txt .md .html .pdf .docx)")
    return documents, skipped


def split_documents(documents: list[list[str]], holdout: float, seed: int) -> tuple[list[str], list[str]]:
    """Hold out whole documents when there are at least 10, else single chunks."""
    rng = random.Random(seed)
    if len(documents) >= 10:
        order = list(range(len(documents)))
        rng.shuffle(order)
        held = set(order[: max(1, round(holdout * len(documents)))])
        train = [c for i, d in enumerate(documents) if i not in held for c in d]
        evaluation = [c for i, d in enumerate(documents) if i in held for c in d]
    else:
        chunks = [c for d in documents for c in d]
        if len(chunks) < 2:
            raise SixfoldError("the corpus is too small: need at least 2 chunks of text to hold one out for evaluation")
        rng.shuffle(chunks)
        n_eval = max(1, round(holdout * len(chunks)))
        evaluation, train = chunks[:n_eval], chunks[n_eval:]
    return train, evaluation


def _trainer(model, tokenizer, train, evaluation, work: Path, config: DomainTrainConfig, callbacks, steps: int, lr: float):
    from transformers import DataCollatorForLanguageModeling, Trainer, TrainingArguments

    args = TrainingArguments(
        output_dir=str(work),
        num_train_epochs=config.epochs,
        max_steps=steps,
        learning_rate=lr,
        per_device_train_batch_size=config.batch_size,
        per_device_eval_batch_size=config.batch_size,
        warmup_steps=0.1,
        weight_decay=0.01,
        seed=config.seed,
        data_seed=config.seed,
        logging_steps=1,
        save_strategy="steps",
        save_steps=config.save_steps,
        save_total_limit=1,
        **trainer_settings(),
    )
    collator = DataCollatorForLanguageModeling(tokenizer, mlm=True, mlm_probability=config.mlm_probability, seed=config.seed)
    trainer = Trainer(
        model=model, args=args, train_dataset=train, eval_dataset=evaluation, data_collator=collator, callbacks=callbacks or []
    )
    quiet_trainer(trainer)
    return trainer


def _perplexity(trainer, seed: int) -> dict[str, float]:
    from transformers import set_seed

    set_seed(seed)  # the same masks for every model scored
    loss = float(trainer.evaluate()["eval_loss"])
    return {"loss": loss, "perplexity": math.exp(min(loss, 50.0))}


def tune_domain(
    corpus: str | Path,
    index_root: str | Path,
    *,
    base: str | None = None,
    config: DomainTrainConfig | None = None,
    activate: str = "auto",
    force: bool = False,
    callbacks: list | None = None,
) -> DomainTuneResult:
    """Masked-LM training of the encoder on ``corpus``; saves a ``domain`` version in the index's registry."""
    import torch
    from transformers import AutoModelForMaskedLM, AutoTokenizer, set_seed

    check_activate(activate)
    config = config or DomainTrainConfig()
    registry = Registry(index_root)
    base_path = resolve_model(base or DEFAULT_EMBEDDER, role="encoder").path
    check_trainable_here(base_path, force)
    set_seed(config.seed)
    tokenizer = AutoTokenizer.from_pretrained(base_path, local_files_only=True)
    documents, skipped = corpus_texts(corpus, tokenizer, config.max_length - 2)
    train_text, eval_text = split_documents(documents, config.holdout, config.seed)

    def encode(texts: list[str]) -> _Tokens:
        enc = tokenizer(texts, truncation=True, max_length=config.max_length, return_special_tokens_mask=True)
        return _Tokens(dict(enc))

    train_set, eval_set = encode(train_text), encode(eval_text)
    key = run_key(base_path, train_text, config.__dict__)
    work = registry.root / ".work" / f"domain-{key}"
    number, tmp = registry.new_version_dir("domain")
    with saving("domain", tmp):
        # before: the original encoder, frozen; only the (new) masked-LM head is fitted, for the same steps
        model = AutoModelForMaskedLM.from_pretrained(base_path, local_files_only=True, dtype=torch.float32)
        for name, param in model.named_parameters():
            param.requires_grad = name.startswith("cls.")
        steps, head_lr = config.max_steps, config.head_learning_rate
        trainer = _trainer(model, tokenizer, train_set, eval_set, work / "head", config, callbacks, steps, head_lr)
        trainer.train(resume_from_checkpoint=latest_checkpoint(work / "head"))
        before = _perplexity(trainer, config.seed)
        # after: the same start, encoder and head trained together
        set_seed(config.seed)
        model = AutoModelForMaskedLM.from_pretrained(base_path, local_files_only=True, dtype=torch.float32)
        trainer = _trainer(model, tokenizer, train_set, eval_set, work / "full", config, callbacks, steps, config.learning_rate)
        trainer.train(resume_from_checkpoint=latest_checkpoint(work / "full"))
        after = _perplexity(trainer, config.seed)
        model.save_pretrained(str(tmp))
        tokenizer.save_pretrained(str(tmp))
        do_activate = should_activate(activate, DomainTuneResult.better(before, after))
        info = {
            "base": base_path,
            "eval": after,
            "eval_before": before,
            "eval_note": "before = original encoder frozen, masked-LM head fitted for the same steps",
            "corpus": str(Path(corpus).expanduser().resolve()),
            "train_chunks": len(train_text),
            "eval_chunks": len(eval_text),
            "config": config.__dict__,
        }
        final = registry.add("domain", number, tmp, info, do_activate)
    shutil.rmtree(work, ignore_errors=True)
    return DomainTuneResult(
        "domain",
        number,
        str(final),
        base_path,
        before,
        after,
        do_activate,
        len(documents),
        len(train_text),
        len(eval_text),
        skipped,
    )
