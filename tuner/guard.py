"""Refuse to train a model that is too big for this machine before loading it: count its parameters from the
safetensors headers (no weights read) or, without weight files, from its config on the meta device."""

from __future__ import annotations

import math
from pathlib import Path

from indexer.errors import SixfoldError

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


def check_trainable_here(model_dir: str | Path, force: bool = False, limit: float = CPU_LIMIT) -> int | None:
    """Raise when there is no GPU and the model is larger than ``limit`` parameters (unless ``force``)."""
    import torch

    n = count_parameters(model_dir)
    if n is not None and n > limit and not force and not torch.cuda.is_available():
        raise SixfoldError(
            f"model {model_dir} has {n / 1e9:.1f} B parameters: too big to train on CPU and no GPU was found "
            f"(limit {limit / 1e9:.1f} B); use a GPU machine or pass --force to try anyway"
        )
    return n
