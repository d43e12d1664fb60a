"""Where models run: ``$SIXFOLD_DEVICE`` when set, else CUDA where torch sees it, else the CPU."""

from __future__ import annotations

from sixfold.core import config


def choose_device() -> str:
    """``SIXFOLD_DEVICE`` if set, else ``cuda`` where torch sees a GPU, else ``cpu`` (imports torch only then)."""
    forced = config.forced_device()
    if forced:
        return forced
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"
