"""Where models run: ``$SIXFOLD_DEVICE`` when set, else CUDA where torch sees it, else the CPU."""

from __future__ import annotations

import os

from sixfold.core import config


def usable_cores() -> int:
    """The cores this process may run on (sched_getaffinity where the OS has it; the core count on macOS)."""
    usable = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else range(os.cpu_count() or 1)
    return max(1, len(usable))


def choose_device() -> str:
    """``SIXFOLD_DEVICE`` if set, else ``cuda`` where torch sees a GPU, else ``cpu`` (imports torch only then)."""
    forced = config.forced_device()
    if forced:
        return forced
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"
