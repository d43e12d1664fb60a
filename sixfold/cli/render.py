"""Printing for the commands: rich consoles (stdout for results, stderr for progress and notes), ``--json``,
tables, and the verdict every ``tune`` run ends with. rich is imported on first use, so ``--help`` stays fast."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console, OverflowMethod
    from rich.table import Table

    from sixfold.tuner.versions import TuneOutcome

HIGH_PRECISION = ("EM", "F1", "perplexity")  # shown with one decimal; other scores with three


def console(stderr: bool = False) -> Console:
    """A console that keeps its width when piped (``$COLUMNS``, default 140) and never guesses highlighting."""
    from rich.console import Console

    stream = sys.stderr if stderr else sys.stdout
    width = None if stream.isatty() else int(os.environ.get("COLUMNS", "140"))
    return Console(stderr=stderr, highlight=False, soft_wrap=False, width=width)


def emit_json(data: Any) -> None:
    """``--json``: the result's one serialisation, UTF-8 as is."""
    sys.stdout.write(json.dumps(data, ensure_ascii=False, indent=2, default=str) + "\n")


def escape(text: str) -> str:
    """``text`` shown as it is (square brackets in it are not rich markup)."""
    from rich.markup import escape as rich_escape

    return rich_escape(text)


def note(out: Console, message: str) -> None:
    out.print(f"[yellow]note:[/] {message}")


def warn(out: Console, message: str) -> None:
    out.print(f"[yellow]warning:[/] {message}")


def table(
    title: str,
    columns: Iterable[str] = (),
    rows: Iterable[Iterable[Any]] = (),
    *,
    right: bool = False,
    overflow: OverflowMethod | None = None,
    **options: Any,
) -> Table:
    """A rich table of string (or rich Text) cells; ``right`` right-aligns every column but the first (numbers),
    ``overflow="fold"`` wraps long cells instead of cutting them."""
    from rich.table import Table

    out = Table(title=title, **options)
    for number, column in enumerate(columns):
        out.add_column(column, justify="right" if right and number else "left", overflow=overflow or "ellipsis")
    for row in rows:
        out.add_row(*row)
    return out


def scores(values: Mapping[str, Any]) -> str:
    """``{'EM': 61.0, 'F1': 70.2}`` -> ``EM 61.0, F1 70.2`` (numbers only)."""
    numbers = {k: v for k, v in values.items() if isinstance(v, (int, float))}
    return ", ".join(f"{k} {v:.1f}" if k in HIGH_PRECISION else f"{k} {v:.3f}" for k, v in numbers.items())


def score_table(
    title: str,
    before: Mapping[str, float],
    after: Mapping[str, float],
    metrics: list[tuple[str, str]],
    labels: tuple[str, str] = ("base", "tuned"),
) -> Table:
    """Before/after/delta per metric, each in its format (``.3f``)."""
    rows = [(m, format(before[m], f), format(after[m], f), format(after[m] - before[m], "+" + f)) for m, f in metrics]
    return table(title, ("metric", *labels, "delta"), rows, right=True)


def warn_truncated(counts: list[int], limit: int, reader: str) -> None:
    """One stderr warning per text longer than the model reads: ``text 3 has 612 tokens; MODEL reads the first 256``."""
    for number, count in enumerate(counts):
        if count > limit:
            warn(console(stderr=True), f"text {number} has {count} tokens; {reader} reads the first {limit}")


def tune_verdict(
    result: TuneOutcome,
    better: str = "better on eval",
    worse: str = "NOT better on eval",
    active: str = "now active",
    inactive: str | None = None,
    tail: str = "",
) -> str:
    """The line every ``tune`` run ends with: ``ROLE@N is better...; now active. Saved in PATH``."""
    name = f"{result.role}@{result.version}"
    state = active if result.activated else (inactive or f"saved, not active (sixfold models use {name})")
    return f"{name} is {better if result.improved else worse}; {state}. Saved in {result.path}{tail}"
