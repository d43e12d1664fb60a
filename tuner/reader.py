"""Fine-tune an extractive reader (a span-prediction head on an encoder) on QA pairs, with transformers' Trainer.

Full fine-tuning by default; ``lora=True`` trains low-rank adapters plus the span head instead (PEFT), which
keeps the saved delta small. Seeds are fixed; checkpoints are written so an interrupted run can resume.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import torch

from tuner.embedder import latest_checkpoint, quiet_trainer
from tuner.precision import trainer_settings
from tuner.qa_data import QAExample, train_features


class _Features(torch.utils.data.Dataset):
    def __init__(self, features: dict) -> None:
        self.features = features
        self.n = len(features["input_ids"])

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> dict:
        return {k: torch.tensor(v[i]) for k, v in self.features.items()}


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
    from transformers import AutoModelForQuestionAnswering, AutoTokenizer, Trainer, TrainingArguments, set_seed

    config = config or ReaderTrainConfig()
    set_seed(config.seed)
    work_dir, save_to = Path(work_dir), Path(save_to)
    tokenizer = AutoTokenizer.from_pretrained(base_model, local_files_only=True)
    # fp32 master weights whatever the checkpoint stores (see tuner/precision.py)
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
