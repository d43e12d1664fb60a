"""Device, precision and quiet-output settings shared by every trainer in tuner/.

Models are always loaded with fp32 master weights (a half-precision checkpoint would otherwise train in pure fp16,
which the fp16 grad scaler refuses: seen on an H200 with an fp16 copy of MiniLM); autocast then runs in bf16 where
the GPU has it (no loss scaling needed), fp16 on older GPUs, and not at all on a CPU.
"""

from __future__ import annotations


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
