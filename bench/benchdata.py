"""Where the bench scripts find the public data sets and keep their caches: one way, for every script.

Data: ``--data DIR``, else ``$SIXFOLD_BENCH_DATA``, else ``../shared/data`` beside the repository (found from this
file, so it works from any working directory and on any machine). Caches: ``$SIXFOLD_BENCH_CACHE/<name>``, else
``~/.cache/sixfold/bench/<name>``. No absolute machine-specific path is hard-coded.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

DATA_ENV = "SIXFOLD_BENCH_DATA"
CACHE_ENV = "SIXFOLD_BENCH_CACHE"
REPO = Path(__file__).resolve().parents[1]


def default_data_dir() -> Path:
    """``$SIXFOLD_BENCH_DATA``, else ``../shared/data`` next to the repository."""
    env = os.environ.get(DATA_ENV)
    return Path(env).expanduser() if env else REPO.parent / "shared" / "data"


def default_cache_dir(name: str) -> Path:
    """``$SIXFOLD_BENCH_CACHE/<name>``, else ``~/.cache/sixfold/bench/<name>`` (not created here)."""
    env = os.environ.get(CACHE_ENV)
    root = Path(env).expanduser() if env else Path.home() / ".cache" / "sixfold" / "bench"
    return root / name


def add_data_argument(parser: argparse.ArgumentParser) -> None:
    """Add ``--data DIR`` (default: :func:`default_data_dir`)."""
    parser.add_argument(
        "--data",
        type=Path,
        default=default_data_dir(),
        metavar="DIR",
        help=f"folder of the public data sets (default: ${DATA_ENV}, else ../shared/data beside the repository: %(default)s)",
    )


def check_data(parser: argparse.ArgumentParser, data: Path, *needed: str | Path) -> Path:
    """``data`` if it is a folder holding every ``needed`` entry (relative to it, or absolute); else one
    ``parser.error`` line (exit status 2) naming what is missing and how to point the script elsewhere."""
    if not data.is_dir():
        parser.error(f"data folder {data} does not exist: pass --data DIR or set ${DATA_ENV}")
    for rel in needed:
        path = data / rel
        if not path.exists():
            parser.error(f"{path} does not exist: is --data {data} the shared data folder?")
    return data


def data_path(parser: argparse.ArgumentParser, data: Path, given: str | Path | None, default: str | Path) -> Path:
    """A data set's path: ``given`` (a --dataset style flag) if set, else ``data / default``; one
    ``parser.error`` line if it does not exist."""
    if given is not None:
        path = Path(given)
        if not path.exists():
            parser.error(f"{path} does not exist")
        return path
    check_data(parser, data, default)
    return data / default
