"""sixfold's settings from the environment, in one place (each read where it is used, so a test or a server may
change one between calls).

- ``SIXFOLD_INDEX``: the index folder when ``--index`` is not given (default ``./sixfold-index``);
- ``SIXFOLD_CACHE``: converted models, example embeddings, eval indexes and reports (default ``~/.cache/sixfold``);
- ``SIXFOLD_DEVICE``: force a torch device (``cpu``, ``cuda``, ``cuda:1``);
- ``SIXFOLD_READER``: the extractive reader when none is named and the index has no tuned one;
- ``SIXFOLD_GENERATOR``: the language model when none is named (default ``models.DEFAULT_GENERATOR``);
- ``SIXFOLD_LM_THREADS``: CPU threads for llama.cpp (default: every core this process may use);
- ``SIXFOLD_LM_RUNTIME``: ``llama.cpp`` or ``transformers``, to override the choice ``reader.llm.runtime`` makes;
- ``SIXFOLD_DEBUG``: show tracebacks instead of one error line.
"""

from __future__ import annotations

import os
from pathlib import Path

DEFAULT_INDEX = "./sixfold-index"


def default_index() -> str:
    return os.environ.get("SIXFOLD_INDEX", DEFAULT_INDEX)


def cache_dir() -> Path:
    return Path(os.environ.get("SIXFOLD_CACHE") or Path.home() / ".cache" / "sixfold").expanduser()


def forced_device() -> str | None:
    return os.environ.get("SIXFOLD_DEVICE") or None


def default_reader() -> str | None:
    return os.environ.get("SIXFOLD_READER") or None


def default_generator() -> str | None:
    return os.environ.get("SIXFOLD_GENERATOR") or None


def lm_threads() -> int | None:
    value = os.environ.get("SIXFOLD_LM_THREADS", "")
    return int(value) if value.isdigit() and int(value) > 0 else None


def lm_runtime() -> str | None:
    value = os.environ.get("SIXFOLD_LM_RUNTIME", "").strip().lower()
    return value if value in ("llama.cpp", "transformers") else None


def debug() -> bool:
    return os.environ.get("SIXFOLD_DEBUG", "") not in ("", "0", "false", "False")
