"""What several commands read the same way: texts from arguments and a file, and an Engine with or without an index."""

from __future__ import annotations

import os
from pathlib import Path

from sixfold.core.errors import SixfoldError


def read_texts(arguments: list[str], file: str | None, what: str = "file") -> list[str]:
    """Texts given as arguments, then one per non-empty line of ``file``."""
    texts = list(arguments)
    if file:
        path = Path(file)
        if not path.is_file():
            raise SixfoldError(f"{what} {file} does not exist")
        texts += [line.strip() for line in path.read_text(encoding="utf-8", errors="replace").splitlines() if line.strip()]
    return texts


def open_engine(index: str | None, model: str | None = None, *, must_exist: bool = False):
    """The Engine over ``index``, or over no index (the packaged or given ``model``) when none is named."""
    from sixfold.engine import Engine

    if not index:
        return Engine(Path(os.devnull) / "no-index", model=model)
    engine = Engine.open(index, model=model)
    if must_exist and not engine.store.exists():
        engine.store.read_pointer()  # raises the 'no index' error
    return engine
