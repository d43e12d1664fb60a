"""What every trainer in tuner/ shares: trainer settings and mixed precision, checkpoints a killed run resumes from,
quiet output, the guard against models too big for this machine, and the rule that decides activation.

Precision: models are always loaded with fp32 master weights (a half-precision checkpoint would otherwise train in
pure fp16, which the fp16 grad scaler refuses: seen on an H200 with an fp16 copy of MiniLM); autocast then runs in
bf16 where the GPU has it (no loss scaling needed), fp16 on older GPUs, and not at all on a CPU.

Size guard: the parameters of a model are counted from its safetensors headers (no weights read) or, without
weight files, from its config on the meta device, before anything is loaded.

This module imports no torch at import time: the CLI reads the role modules' config defaults for its parser.
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path

from sixfold.core.errors import SixfoldError

# ---- trainer settings ------------------------------------------------------------------------------------------------


def mixed_precision(device: str | None = None) -> dict[str, bool]:
    """``bf16`` / ``fp16`` flags for transformers' TrainingArguments (and its sentence-transformers subclasses).

    ``device``: where the model trains ("cuda", "cpu", ...); default: CUDA when torch sees it.
    """
    import torch

    cuda = device.startswith("cuda") if device else torch.cuda.is_available()
    bf16 = cuda and torch.cuda.is_bf16_supported()
    return {"bf16": bf16, "fp16": cuda and not bf16}


def trainer_settings(device: str | None = None) -> dict:
    """TrainingArguments every tuner shares: no reporting or tqdm (sixfold draws its own progress bar), data loaded
    in-process, the CPU unless training on CUDA, and ``mixed_precision``."""
    import torch

    cuda = device.startswith("cuda") if device else torch.cuda.is_available()
    return {"report_to": [], "disable_tqdm": True, "dataloader_num_workers": 0, "use_cpu": not cuda, **mixed_precision(device)}


def quiet_trainer(trainer) -> None:
    """Drop the callback that prints every log dict to stdout (the progress bar shows the loss)."""
    from transformers.trainer_callback import PrinterCallback

    trainer.remove_callback(PrinterCallback)


# ---- checkpoints -----------------------------------------------------------------------------------------------------


def run_key(*parts: object) -> str:
    """A short hash of a run's inputs: the checkpoint folder of the same run is found again after a kill."""
    digest = hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()
    return digest[:12]


def latest_checkpoint(work_dir: Path) -> str | None:
    """The newest whole ``checkpoint-N`` folder a trainer left in ``work_dir`` (None: start from scratch). Whole: its
    ``trainer_state.json``, written last, is there (a run killed while saving leaves a partial folder)."""
    work_dir = Path(work_dir)
    found = (
        sorted(
            (p for p in work_dir.glob("checkpoint-*") if p.name.split("-")[1].isdigit() and (p / "trainer_state.json").is_file()),
            key=lambda p: int(p.name.split("-")[1]),
        )
        if work_dir.is_dir()
        else []
    )
    return str(found[-1]) if found else None


# ---- size guard ------------------------------------------------------------------------------------------------------

CPU_LIMIT = 1.5e9  # parameters; above this, training on CPU takes days


def count_parameters(model_dir: str | Path) -> int | None:
    """Parameters of the model in ``model_dir`` without loading its weights (None when it cannot tell)."""
    folder = Path(model_dir)
    files = sorted(folder.glob("*.safetensors"))
    if files:
        from safetensors import safe_open

        total = 0
        for file in files:
            with safe_open(str(file), framework="pt") as handle:
                for key in handle.keys():
                    total += math.prod(handle.get_slice(key).get_shape())
        return total
    if not (folder / "config.json").is_file():
        return None
    import torch
    from transformers import AutoConfig, AutoModel

    try:
        config = AutoConfig.from_pretrained(str(folder), local_files_only=True)
        with torch.device("meta"):
            model = AutoModel.from_config(config)
    except Exception:
        return None
    return sum(p.numel() for p in model.parameters())


def check_trainable_here(model_dir: str | Path, force: bool = False, limit: float | None = None) -> int | None:
    """Raise when there is no GPU and the model is larger than ``limit`` parameters (default ``CPU_LIMIT``), unless
    ``force``."""
    import torch

    limit = CPU_LIMIT if limit is None else limit
    n = count_parameters(model_dir)
    if n is not None and n > limit and not force and not torch.cuda.is_available():
        raise SixfoldError(
            f"model {model_dir} has {n / 1e9:.1f} B parameters: too big to train on CPU and no GPU was found "
            f"(limit {limit / 1e9:.1f} B); use a GPU machine or pass --force to try anyway"
        )
    return n


# ---- activation ------------------------------------------------------------------------------------------------------

ACTIVATE_CHOICES = ("auto", "yes", "no")  # auto: only when the new version is better on held-out data


def check_activate(activate: str) -> str:
    """Refuse an ``activate`` value other than auto, yes or no (before any training)."""
    if activate not in ACTIVATE_CHOICES:
        raise SixfoldError(f"--activate takes auto, yes or no, not '{activate}'")
    return activate


def should_activate(activate: str, improved: bool) -> bool:
    """Whether a new version becomes active: ``yes`` always, ``no`` never, ``auto`` when it ``improved`` (see
    ``TuneOutcome.better``: the role's metric on held-out data)."""
    return check_activate(activate) == "yes" or (activate == "auto" and improved)
