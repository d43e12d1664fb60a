"""A progress bar for indexing: files done/total, chunks, chunks/s, elapsed and ETA (rich)."""

from __future__ import annotations

import re
import time

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn, TimeRemainingColumn

_LINE_BREAKS = re.compile(r"[\r\n\v\f\x1c-\x1e\x85\u2028\u2029]+")
_CONTROL = re.compile(r"[\x00-\x08\x0e-\x1b\x1f\x7f-\x84\x86-\x9f]")


def one_line(text: object) -> str:
    """``text`` (file names, library messages: anything a file controls) made safe to print through rich markup:
    on one line, control characters (terminal escapes) shown as ``\\x..``, and ``[...]`` kept literal."""
    flat = _LINE_BREAKS.sub(" ", str(text))
    return escape(_CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", flat))


class IndexProgress:
    """Implements indexer.pipeline.Progress on a rich bar (stderr); warnings print above the bar."""

    def __init__(self, console: Console, quiet: bool = False) -> None:
        self.console = console
        self.quiet = quiet
        self.chunks = 0
        self.started = time.perf_counter()
        self._bar = Progress(
            TextColumn("[bold]indexing"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("files"),
            TextColumn("{task.fields[chunks]} chunks"),
            TextColumn("{task.fields[rate]} chunks/s"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=console,
            disable=quiet,
            transient=False,
        )
        self._task: TaskID | None = None

    def __enter__(self) -> IndexProgress:
        return self

    def __exit__(self, exc_type, *exc) -> None:
        if self._task is not None:
            if exc_type is not None:  # the error is the one line the user gets: no half-done bar left above it
                self._bar.live.transient = True
            self._bar.stop()

    def start(self, total_files: int) -> None:
        """Called once the work is known; the bar appears only then (errors before it print no bar)."""
        self.started = time.perf_counter()
        self._bar.start()
        self._task = self._bar.add_task("index", total=total_files, chunks=0, rate="0")

    def advance(self, files: int, chunks: int) -> None:
        self.chunks += chunks
        rate = self.chunks / max(time.perf_counter() - self.started, 1e-9)
        assert self._task is not None, "start() comes first"
        self._bar.update(self._task, advance=files, chunks=self.chunks, rate=f"{rate:.0f}")

    def warn(self, message: str) -> None:
        """One line per warning; the message is plain text (it quotes file names and library errors)."""
        self.console.print(f"[yellow]warning:[/] {one_line(message)}", highlight=False, soft_wrap=True)


class TrainProgress:
    """A bar for fine-tuning: step/total, loss, examples/s, elapsed and ETA; a transformers TrainerCallback feeds it."""

    def __init__(self, console: Console, quiet: bool = False) -> None:
        self._bar = Progress(
            TextColumn("[bold]training"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("steps"),
            TextColumn("loss {task.fields[loss]}"),
            TextColumn("{task.fields[rate]} ex/s"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=console,
            disable=quiet,
        )
        self._task = None

    def __enter__(self) -> TrainProgress:
        return self

    def __exit__(self, *exc) -> None:
        if self._task is not None:
            self._bar.stop()

    def callback(self):
        from transformers import TrainerCallback

        bar = self

        class _Callback(TrainerCallback):
            def on_train_begin(self, args, state, control, **kwargs):
                bar._bar.start()
                bar._task = bar._bar.add_task("train", total=state.max_steps, loss="-", rate="-")
                bar._batch = args.per_device_train_batch_size
                bar._started = time.perf_counter()

            def on_step_end(self, args, state, control, **kwargs):
                rate = state.global_step * bar._batch / max(time.perf_counter() - bar._started, 1e-9)
                bar._bar.update(bar._task, completed=state.global_step, rate=f"{rate:.1f}")

            def on_log(self, args, state, control, logs=None, **kwargs):
                if logs and "loss" in logs:
                    bar._bar.update(bar._task, loss=f"{float(logs['loss']):.3f}")

        return _Callback()


class CountProgress:
    """A bar for counted work (re-embedding chunks, synthesizing pairs): done/total, rate, elapsed and ETA.

    ``update(done, total)`` is the callback the tuner calls; the bar starts on the first call.
    """

    def __init__(self, console: Console, label: str, unit: str, quiet: bool = False) -> None:
        self.unit = unit
        self._bar = Progress(
            TextColumn(f"[bold]{label}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn(unit),
            TextColumn("{task.fields[rate]} " + unit + "/s"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=console,
            disable=quiet,
        )
        self._task: TaskID | None = None
        self._started = time.perf_counter()

    def __enter__(self) -> CountProgress:
        return self

    def __exit__(self, *exc) -> None:
        if self._task is not None:
            self._bar.stop()

    def update(self, done: int, total: int) -> None:
        if self._task is None:
            self._bar.start()
            self._task = self._bar.add_task(self.unit, total=total, rate="0")
            self._started = time.perf_counter()
        rate = done / max(time.perf_counter() - self._started, 1e-9)
        self._bar.update(self._task, completed=done, total=total, rate=f"{rate:.1f}")
