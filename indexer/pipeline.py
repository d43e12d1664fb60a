"""walk -> diff against the stored content hashes -> load -> chunk -> embed -> commit.

Only new, changed, renamed and deleted files are touched. Loading and chunking run a few files ahead
of the model, in one thread (``workers=1``) or in N loader processes (``workers=N``) whose results are taken in
file order, so the index is the same either way; chunks of several files are embedded in one batch, in a thread
beside the loading and the index writes, so the pipeline runs close to the model's raw speed. Work is committed
every ``commit_every`` chunks, so an interrupted run keeps what it finished and the next run picks up the rest.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import multiprocessing
import os
import queue
import re
import stat
import sys
import threading
import time
from collections import Counter, deque
from collections.abc import Generator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np

from sixfold.core.device import usable_cores
from sixfold.core.errors import SixfoldError
from sixfold.indexer import prepare
from sixfold.indexer.chunking import Chunker
from sixfold.indexer.embedding import Embedder
from sixfold.indexer.language import UNDETERMINED, detect
from sixfold.indexer.loaders import LoadLimits, is_supported, load_document, looks_like_text, may_be_text
from sixfold.indexer.prepare import Fatal, Job, Prepared, Skipped, TokenCounter, prepare_file, prepare_in_worker, start_worker
from sixfold.indexer.store import IndexSettings, IndexStore, NewFile, Transaction

if TYPE_CHECKING:
    from sixfold.indexer.ray_pipeline import RayCluster

COMMIT_EVERY = int(os.environ.get("SIXFOLD_COMMIT_EVERY", "20000"))
EMBED_GROUP = 512  # chunks gathered across files before one encode call
FIRST_GROUP = 64  # ...except the first, which starts the encoder while the loaders prepare the rest
ENCODE_STEP = 2  # batches per encode call within a group: how long a Ctrl-C may wait for the encoder thread
MAX_DEFAULT_WORKERS = 8  # the default number of loader processes: all but one of the usable cores, at most this many
# With the default number of workers, a run that loads fewer files than this loads them in the loader thread:
# starting processes (~1 s each: an interpreter, langchain, the tokenizer) costs more than they save there.
POOL_MIN_FILES = 32
AHEAD_PER_WORKER = 4  # files each loader process may have prepared (or be preparing) before the embedder takes them


def default_workers() -> int:
    """Loader processes when none are asked for: all but one of the cores this process may use (that one is the
    encoder's and the writer's), at most ``MAX_DEFAULT_WORKERS``, at least 1. On a 2-core machine that is 1, the loader
    thread: there two processes gained nothing with MiniLM and lost 13-22 % with the dual embedder (docs/benchmarks.md,
    "Loader workers"); ``--workers 2`` still asks for them (the USE embedder gained there on a quiet machine)."""
    return max(1, min(usable_cores() - 1, MAX_DEFAULT_WORKERS))


def check_workers(workers: int | None) -> None:
    """``workers`` is None (the default) or a whole number >= 1; anything else is one clear error."""
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
        raise SixfoldError(f"the number of loader workers must be a whole number of at least 1, got {workers!r}")


class Progress(Protocol):
    """What the pipeline reports; the CLI draws it as a bar, tests may record it."""

    def start(self, total_files: int) -> None: ...
    def advance(self, files: int, chunks: int) -> None: ...
    def warn(self, message: str) -> None: ...


class _Silent:
    def start(self, total_files: int) -> None:
        pass

    def advance(self, files: int, chunks: int) -> None:
        pass

    def warn(self, message: str) -> None:
        pass


@dataclass
class IndexReport:
    folder: str
    added: int = 0
    updated: int = 0
    removed: int = 0
    renamed: int = 0
    unchanged: int = 0
    chunks_added: int = 0
    chunks_removed: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)
    unsupported: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    generation: str | None = None
    repaired: list[str] = field(default_factory=list)  # damage the run found and fixed (pointer, vectors, lexical)

    @property
    def touched(self) -> int:
        return self.added + self.updated + self.removed + self.renamed


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _kind(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "a named pipe (FIFO)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "not a regular file"


def _shown(name: str) -> str:
    """A path as it can be printed and stored: undecodable bytes of the name as \\x.. escapes."""
    return name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def walk_folder(
    folder: Path, follow_links: bool = False, skipped: list[tuple[str, str]] | None = None
) -> tuple[list[Path], Counter]:
    """Files to index under ``folder`` (sorted, hidden entries skipped) and a count of the others by suffix.

    A file of a known format is indexed by its name; one of another type or none (``copyright``, ``README.Debian``,
    ``changelog.Debian.gz``) when its first few kB are text (``looks_like_text``), unless its suffix is a known
    binary one (``.png``, ``.so``: not opened). Nothing else is opened here, and only regular files are sniffed.
    A symbolic link is followed when its target lies inside ``folder`` (a file; a folder
    inside is walked at its own path anyway), or anywhere with ``follow_links``. What is not indexed for a reason
    the user should hear (a link out of the folder, a broken link, a link loop, a FIFO, socket or device, a name
    that is not UTF-8) is appended to ``skipped`` as (path, reason); a FIFO is never opened (it would block).
    """
    walker = _Walker(folder, follow_links, skipped)
    walker.walk()
    return walker.files, walker.unsupported


def _link_failure(exc: BaseException) -> str:
    """Why a symbolic link cannot be followed, from what resolving it raised."""
    if isinstance(exc, RuntimeError) or getattr(exc, "errno", None) == errno.ELOOP:
        return "symbolic link loop"
    if isinstance(exc, FileNotFoundError):
        return "broken symbolic link (its target does not exist)"
    return f"symbolic link that cannot be followed: {getattr(exc, 'strerror', None) or exc}"


class _Walker:
    """One ``walk_folder`` run: the files found, the unsupported ones counted, the folders already listed."""

    def __init__(self, folder: Path, follow_links: bool, skipped: list[tuple[str, str]] | None) -> None:
        self.folder = folder
        self.root = folder.resolve()
        self.follow_links = follow_links
        self.skipped = skipped
        self.files: list[Path] = []
        self.unsupported: Counter = Counter()
        self.seen: set[tuple[int, int]] = set()

    def walk(self) -> None:
        stack: list[Path] = [self.folder]
        while stack:
            directory = stack.pop()
            subfolders = [sub for entry in self._list(directory) if (sub := self._visit(directory, entry)) is not None]
            stack.extend(reversed(subfolders))

    def _skip(self, path: Path, reason: str) -> None:
        if self.skipped is not None:
            self.skipped.append((_shown(path.relative_to(self.folder).as_posix()), reason))

    def _inside(self, target: Path) -> bool:
        return target == self.root or self.root in target.parents

    def _count_unsupported(self, path: Path) -> None:
        self.unsupported[path.suffix.lower() or "(none)"] += 1

    def _list(self, directory: Path) -> list[os.DirEntry]:
        """The folder's entries by name; none when it was listed before (a loop) or cannot be listed."""
        try:
            info = os.stat(directory)
            if (info.st_dev, info.st_ino) in self.seen:
                return []
            self.seen.add((info.st_dev, info.st_ino))
            with os.scandir(directory) as it:
                return sorted(it, key=lambda e: e.name)
        except OSError as exc:
            self._skip(directory, f"cannot list the folder: {exc.strerror or exc}")
            return []

    def _visit(self, directory: Path, entry: os.DirEntry) -> Path | None:
        """Record one entry (a file to index, skipped, or unsupported); returns it when it is a folder to walk."""
        if entry.name.startswith("."):
            return None
        path = directory / entry.name
        try:
            entry.name.encode("utf-8")
        except UnicodeEncodeError:
            self._skip(path, "the name is not valid UTF-8 (rename it to index it)")
            return None
        try:
            if entry.is_symlink():
                return self._visit_link(directory, path)
            mode = entry.stat(follow_symlinks=False).st_mode
        except OSError as exc:
            self._skip(path, f"cannot read: {exc.strerror or exc}")
            return None
        if stat.S_ISDIR(mode):
            return path
        if not stat.S_ISREG(mode):
            self._skip(path, f"{_kind(mode)}, not a file")
        elif _indexable(path):
            self.files.append(path)
        else:
            self._count_unsupported(path)
        return None

    def _visit_link(self, directory: Path, path: Path) -> Path | None:
        """A symbolic link: followed when its target is inside the folder or ``follow_links``; else skipped, said why."""
        try:
            target = path.resolve(strict=True)
            mode = os.stat(target).st_mode
        except (RuntimeError, OSError) as exc:
            self._skip(path, _link_failure(exc))
            return None
        if stat.S_ISDIR(mode):
            if self._inside(target):
                if directory.resolve().is_relative_to(target):
                    self._skip(path, "symbolic link to a folder that holds it (a loop; not followed)")
                return None  # a folder inside: walked at its own path
            if self.follow_links:
                return path
            self._skip(path, "symbolic link to a folder outside the indexed folder (--follow-links follows it)")
            return None
        if not stat.S_ISREG(mode):
            self._skip(path, f"symbolic link to {_kind(mode)}, not a file")
        elif not (self._inside(target) or self.follow_links):
            if is_supported(path) or may_be_text(path):
                self._skip(path, "symbolic link to a file outside the indexed folder (--follow-links follows it)")
            else:
                self._count_unsupported(path)
        elif _indexable(path):
            self.files.append(path)
        else:
            self._count_unsupported(path)
        return None


def _indexable(path: Path) -> bool:
    """A regular file (or a link to one) that a loader reads: by its format, or as text when its content is text."""
    return is_supported(path) or (may_be_text(path) and looks_like_text(path))


@dataclass
class _Plan:
    """What a run does to bring the index up to date: nothing, rename, remove, or (re)index each file."""

    unchanged: int = 0
    renames: list[tuple[str, str]] = field(default_factory=list)  # (old path, new path), same content
    removals: list[str] = field(default_factory=list)
    todo: list[Job] = field(default_factory=list)


def index_folder(
    store: IndexStore,
    folder: str | Path,
    embedder: Embedder,
    settings: IndexSettings | None = None,
    progress: Progress | None = None,
    batch_size: int = 64,
    commit_every: int = COMMIT_EVERY,
    limits: LoadLimits | None = None,
    follow_links: bool = False,
    workers: int | None = None,
    cluster: RayCluster | None = None,
) -> IndexReport:
    """Bring the index up to date with ``folder``; returns what changed.

    ``limits`` caps what one file may make the loader read (``LoadLimits``); ``follow_links`` follows symbolic
    links that leave ``folder`` (by default they are skipped and reported). ``workers``: processes that load and
    chunk files (1: one loader thread; None: ``default_workers()``, and the thread for runs of fewer than
    ``POOL_MIN_FILES`` files); the index is the same whatever the number. ``cluster``: a connected ``RayCluster``
    (``sixfold.indexer.ray_pipeline``) that loads, chunks and embeds the files to (re)index instead (``workers`` is
    then not used); the walk, the diff, renames, removals and every write stay here, so the index is the same."""
    check_workers(workers)
    started = time.perf_counter()
    progress = progress or _Silent()
    source = _source_folder(store, folder)
    root = str(source)
    report = IndexReport(folder=root)
    walk_skipped: list[tuple[str, str]] = []
    paths, unsupported = walk_folder(source, follow_links=follow_links, skipped=walk_skipped)
    report.unsupported = dict(unsupported)

    txn = store.begin(settings)
    report.repaired = list(txn.repaired)
    writer = _Writer(store, txn, embedder, root, report, progress, batch_size, commit_every)
    try:
        _check_model(txn.settings, embedder)
        chunker = Chunker.for_embedder(embedder, txn.settings.chunk_tokens, txn.settings.overlap_tokens)
        known = {p: h for (r, p), (h, _n) in txn.file_records().items() if r == root}
        if not paths and not known:
            raise SixfoldError(f"folder {folder} has no files to index (supported: .txt .md .html .pdf .docx, also gzipped)")
        for rel, reason in walk_skipped:  # links out of the folder, FIFOs, broken links: said, not silently dropped
            _skip(report, progress, rel, reason)
        plan = _plan_changes(known, _hash_files(source, paths, report, progress))
        _apply_renames_and_removals(txn, root, plan, report)
        # Files that failed to load before are retried; any that still fail are reported again.
        progress.start(len(plan.todo))
        if cluster is not None:
            _index_on_cluster(cluster, plan.todo, embedder, txn.settings, limits, batch_size, writer)
        else:
            _index_here(plan.todo, workers, embedder, chunker, txn.settings, limits, writer)
        writer.finish()
    except BaseException:
        writer.settle()  # the encoder thread ends first: the embedder is free (a server reuses it), the exit is clean
        writer.txn.abort()
        raise
    report.seconds = time.perf_counter() - started
    return report


def _index_here(
    todo: list[Job],
    workers: int | None,
    embedder: Embedder,
    chunker: Chunker,
    settings: IndexSettings,
    limits: LoadLimits | None,
    writer: _Writer,
) -> None:
    """The files of ``todo`` loaded and chunked in the loader thread or in loader processes, embedded by ``writer``."""
    report, progress = writer.report, writer.progress
    processes = _loader_processes(workers, len(todo))
    counter = TokenCounter.for_embedder(embedder) if processes > 1 else None
    if counter is not None:
        chunk_sizes = (settings.chunk_tokens, settings.overlap_tokens)
        prepared = _prepare_in_processes(todo, counter, chunk_sizes, report, progress, limits, processes)
    else:
        prepared = _prepare_ahead(todo, chunker, report, progress, limits)
    with contextlib.closing(prepared):  # on an error, the loader stops now (its thread or processes)
        for item in prepared:
            if item is None:
                progress.advance(files=1, chunks=0)
            else:
                writer.add(item)


def _index_on_cluster(
    cluster: RayCluster,
    todo: list[Job],
    embedder: Embedder,
    settings: IndexSettings,
    limits: LoadLimits | None,
    batch_size: int,
    writer: _Writer,
) -> None:
    """The files of ``todo`` loaded, chunked and embedded on a Ray cluster, added here in file order with the vectors
    computed there (``_Writer.add_embedded``); skips and fatal loader errors are handled as for the local loaders."""
    from sixfold.core.models import ResolvedModel

    counter = TokenCounter.for_embedder(embedder)
    if counter is None:
        raise SixfoldError(f"the embedder {embedder.name} has no tokenizer that can be sent to Ray workers; index without --ray")
    model = ResolvedModel(embedder.name, str(getattr(embedder, "path", embedder.name)))
    chunk_sizes = (settings.chunk_tokens, settings.overlap_tokens)
    results = cluster.index_files(todo, model, counter, chunk_sizes, limits, batch_size)
    try:
        for result, vectors in results:
            item = _delivered(result, writer.report, writer.progress)
            if item is None:
                writer.progress.advance(files=1, chunks=0)
            else:
                assert vectors is not None
                writer.add_embedded(item, vectors)
    finally:
        close = getattr(results, "close", None)  # a generator: closing it stops the Ray reader
        if close is not None:
            close()


def _source_folder(store: IndexStore, folder: str | Path) -> Path:
    """``folder`` resolved, once it is known to be a folder that may be indexed into ``store``."""
    source = Path(folder).expanduser()
    if not source.exists():
        raise SixfoldError(f"folder {folder} does not exist")
    if not source.is_dir():
        raise SixfoldError(f"{folder} is not a folder")
    source = source.resolve()
    if source == store.root or source in store.root.parents:
        raise SixfoldError("the index folder cannot be inside the folder being indexed")
    if not store.exists():
        store.check_usable_for_new()
    return source


def _check_model(settings: IndexSettings, embedder: Embedder) -> None:
    """An index's vectors come from one model: refuse to add vectors from another."""
    if settings.model != embedder.name:
        raise SixfoldError(
            f"this index was built with the model {settings.model}, not {embedder.name}; omit --model or index into a new folder"
        )
    if settings.dim != embedder.dim:
        raise SixfoldError(f"model {embedder.name} gives {embedder.dim}-d vectors but the index holds {settings.dim}-d")


def _skip(report: IndexReport, progress: Progress, rel: str, reason: str) -> None:
    """A file not indexed, with the reason: in the report and said as a warning."""
    report.skipped.append((rel, reason))
    progress.warn(f"skipped {rel}: {reason}")


def _delivered(item: Prepared | Skipped | Fatal, report: IndexReport, progress: Progress) -> Prepared | None:
    """A prepared file for the embedder, or None for a skipped one (reported, in one line: library messages may
    span several); a fatal loader error is raised. Both preparers (thread and processes) hand their results here."""
    if isinstance(item, Fatal):
        raise item.error
    if isinstance(item, Skipped):
        _skip(report, progress, item.rel, " ".join(item.reason.split()))
        return None
    return item


def _hash_files(source: Path, paths: list[Path], report: IndexReport, progress: Progress) -> dict[str, tuple[Path, str]]:
    """Relative path -> (path, content hash) of each file that can be read; the others are skipped."""
    current: dict[str, tuple[Path, str]] = {}
    for path in paths:
        try:
            current[path.relative_to(source).as_posix()] = (path, file_sha256(path))
        except OSError as exc:
            _skip(report, progress, str(path.relative_to(source)), f"cannot read: {exc.strerror or exc}")
    return current


def _plan_changes(known: dict[str, str], current: dict[str, tuple[Path, str]]) -> _Plan:
    """Compare the indexed hashes (``known``, by relative path) with the folder's (``current``).

    A file gone from one path whose content appears at a new path is a rename (its chunks and vectors are kept);
    the other gone files are removals; new and changed files are jobs, in the walk's order."""
    plan = _Plan()
    gone = [p for p in known if p not in current]
    by_hash: dict[str, list[str]] = {}
    for p in gone:
        by_hash.setdefault(known[p], []).append(p)
    for rel, (path, digest) in current.items():
        if rel in known:
            if known[rel] == digest:
                plan.unchanged += 1
            else:
                plan.todo.append(Job(rel, path, digest, True))
        elif by_hash.get(digest):
            old = by_hash[digest].pop()
            gone.remove(old)
            plan.renames.append((old, rel))
        else:
            plan.todo.append(Job(rel, path, digest, False))
    plan.removals = gone
    return plan


def _apply_renames_and_removals(txn: Transaction, root: str, plan: _Plan, report: IndexReport) -> None:
    """The plan's changes that need no model: renames, then removals (counted in the report)."""
    report.unchanged += plan.unchanged
    for old, new in plan.renames:
        txn.rename_file(root, old, new)
        report.renamed += 1
    for rel in plan.removals:
        report.chunks_removed += txn.remove_file(root, rel)
        report.removed += 1


@dataclass
class _Writer:
    """Embeds prepared files in groups, adds them to the transaction, and commits every ``commit_every`` chunks.

    Chunks of several files are gathered until they reach ``EMBED_GROUP`` so the model encodes in large calls, each
    in a thread of its own (``_Encoding``) while this one gathers the next group and writes the one before. A
    periodic commit ends the transaction and begins the next one: an interrupted run keeps what it committed. The
    store's writer lock stays held across them (``Engine.index`` holds it; a transaction begun while this thread
    holds it reuses it). ``txn`` is always the open (or last) transaction, the one to abort on failure.
    """

    store: IndexStore
    txn: Transaction
    embedder: Embedder
    root: str
    report: IndexReport
    progress: Progress
    batch_size: int
    commit_every: int
    group: list[Prepared] = field(default_factory=list)
    group_chunks: int = 0
    uncommitted_chunks: int = 0
    encoding: _Encoding | None = None  # the previous group, being embedded while the loaders prepare the next one
    embedded: list[tuple[Prepared, np.ndarray]] = field(default_factory=list)  # files embedded on a cluster, unwritten
    embedded_chunks: int = 0

    def add(self, item: Prepared) -> None:
        """Queue one prepared file; embed the group once it is large enough, and commit when it is time."""
        self.group.append(item)
        self.group_chunks += len(item.chunks)
        started = self.encoding is not None or self.report.chunks_added > 0
        if self.group_chunks >= (EMBED_GROUP if started else min(FIRST_GROUP, EMBED_GROUP)):
            self._flush()

    def add_embedded(self, item: Prepared, vectors: np.ndarray) -> None:
        """Add one prepared file whose vectors were computed elsewhere (a Ray actor), in file order. Files are
        written in batches of ``EMBED_GROUP`` chunks, or fewer when a commit is due (every ``commit_every`` chunks,
        as ``add`` does)."""
        self.embedded.append((item, vectors))
        self.embedded_chunks += len(item.chunks)
        if self.embedded_chunks >= EMBED_GROUP or self.uncommitted_chunks + self.embedded_chunks >= self.commit_every:
            self._write_embedded()

    def _write_embedded(self) -> None:
        if not self.embedded:
            return
        items = [item for item, _ in self.embedded]
        vectors = (
            np.concatenate([v for _, v in self.embedded])
            if self.embedded_chunks
            else np.empty((0, self.txn.settings.dim), np.float32)
        )
        chunks, self.embedded, self.embedded_chunks = self.embedded_chunks, [], 0
        self._add_files(items, vectors)
        self.progress.advance(files=len(items), chunks=chunks)
        self.uncommitted_chunks += chunks
        if self.uncommitted_chunks >= self.commit_every:
            self._commit_and_continue()

    def finish(self) -> None:
        """Embed what is left and commit; a run that changed nothing in an existing index commits nothing."""
        self._flush()
        self._take_encoded()
        self._write_embedded()
        if self.txn.changed or not self.store.exists():
            self.report.generation = self.txn.commit()
        else:
            self.txn.abort()

    def _flush(self) -> None:
        """Hand the gathered group to the encoder thread as soon as it is free, then write the group it finished."""
        if not self.group:
            return
        finished = self.encoding  # kept in self.encoding until done: an interrupt here stops it (``settle``)
        vectors = finished.vectors() if finished is not None else None  # waits for the encoder; raises its error
        texts = [c.text for item in self.group for c in item.chunks]
        self.encoding = _Encoding(self.embedder, self.group, texts, self.batch_size)
        self.group = []
        self.group_chunks = 0
        if finished is not None and vectors is not None:
            self._write(finished, vectors)

    def settle(self) -> None:
        """Stop the encoder thread of a failed or interrupted run and wait for it (within one encode call)."""
        if self.encoding is not None:
            self.encoding.stop()
            self.encoding = None

    def _take_encoded(self) -> None:
        """Wait for the last group being embedded and write it."""
        if self.encoding is not None:
            vectors = self.encoding.vectors()
            finished, self.encoding = self.encoding, None
            self._write(finished, vectors)

    def _write(self, encoded: _Encoding, vectors: np.ndarray) -> None:
        """Add an embedded group's files to the transaction, and commit when it is time."""
        self._add_files(encoded.files, vectors)
        self.progress.advance(files=len(encoded.files), chunks=len(encoded.texts))
        self.uncommitted_chunks += len(encoded.texts)
        if self.uncommitted_chunks >= self.commit_every:
            self._commit_and_continue()

    def _add_files(self, items: list[Prepared], vectors: np.ndarray) -> None:
        """Files in one batch (``Transaction.add_files``), after removing the old chunks of those that changed."""
        for item in items:
            if item.replaces:
                self.report.chunks_removed += self.txn.remove_file(self.root, item.rel)
                self.report.updated += 1
            else:
                self.report.added += 1
            self.report.chunks_added += len(item.chunks)
        files = [NewFile(i.rel, i.sha256, i.size, i.mtime, i.title, i.chunks, i.language) for i in items]
        self.txn.add_files(self.root, files, vectors)

    def _commit_and_continue(self) -> None:
        self.report.generation = self.txn.commit()
        self.txn = self.store.begin()
        self.uncommitted_chunks = 0


class _Encoding:
    """One group of files embedded in a thread of its own, so that loading, chunking and writing the index go on
    beside the encoder instead of between its calls (the encoder waited for them: docs/benchmarks.md, "Loader
    workers"). One encode runs at a time; the embedder's tokenizer is not shared with the chunker (``Chunker`` keeps a
    copy). The group is encoded ``ENCODE_STEP`` batches at a time so that ``stop`` (a Ctrl-C, a failed run) ends the
    thread within one such call: the run must not end while it is inside the model (a thread killed at exit inside
    torch aborts the process)."""

    def __init__(self, embedder: Embedder, files: list[Prepared], texts: list[str], batch_size: int) -> None:
        self.files, self.texts = files, texts
        self._vectors: np.ndarray | None = None
        self._error: BaseException | None = None
        self._stop = threading.Event()
        self._done = threading.Event()  # waited on instead of join(): a join a Ctrl-C interrupts marks the thread
        # stopped while it still runs (CPython 3.11's Thread._wait_for_tstate_lock), and it could not be waited for
        self._thread = threading.Thread(target=self._run, args=(embedder, batch_size), name="sixfold-encoder", daemon=True)
        self._thread.start()

    def _run(self, embedder: Embedder, batch_size: int) -> None:
        try:
            # Longest first, as sentence-transformers orders one call's texts: the calls then make the batches one
            # call over the whole group would (unsorted calls of two batches each padded more: 20-45 % slower).
            order = sorted(range(len(self.texts)), key=lambda i: -len(self.texts[i]))
            step = max(1, batch_size) * ENCODE_STEP
            vectors: np.ndarray | None = None
            for start in range(0, len(order), step):
                if self._stop.is_set():
                    return
                picked = order[start : start + step]
                part = embedder.encode([self.texts[i] for i in picked], batch_size=batch_size)
                if vectors is None:
                    vectors = np.empty((len(order), part.shape[1]), dtype=part.dtype)
                vectors[picked] = part
            self._vectors = vectors if vectors is not None else embedder.encode([], batch_size=batch_size)
        except BaseException as exc:  # handed to the writer's thread, which raises it
            self._error = exc
        finally:
            self._done.set()

    def vectors(self) -> np.ndarray:
        """The group's vectors, once the encoder is done (its error, raised here, if it failed)."""
        self._done.wait()
        if self._error is not None:
            raise self._error
        assert self._vectors is not None
        return self._vectors

    def stop(self) -> None:
        """Stop after the call in progress and wait for it (its vectors are not wanted). A second Ctrl-C while
        waiting is ignored rather than leaving the thread inside the model."""
        self._stop.set()
        while not self._done.is_set():
            try:
                self._done.wait()
            except KeyboardInterrupt:
                continue


def _prepare_ahead(
    todo: list[Job],
    chunker: Chunker,
    report: IndexReport,
    progress: Progress,
    limits: LoadLimits | None = None,
) -> Generator[Prepared | None, None, None]:
    """Load and chunk files in a thread, a few files ahead of the embedder. ``None`` marks a skipped file.

    A file that cannot be read is skipped with a warning; a format whose library does not import
    (``LoaderUnavailable``) stops the run.
    """
    ready: queue.Queue = queue.Queue(maxsize=8)
    stop = threading.Event()
    done = object()

    def work() -> None:
        try:
            for job in todo:
                if stop.is_set():
                    return
                item = prepare_file(job, chunker, limits)
                ready.put(item)
                if isinstance(item, Fatal):
                    return
        finally:
            ready.put(done)

    thread = threading.Thread(target=work, name="sixfold-loader", daemon=True)
    thread.start()
    try:
        while (item := ready.get()) is not done:
            yield _delivered(item, report, progress)
    finally:
        stop.set()
        while thread.is_alive():  # the loader may be blocked on a full queue: drain it until it ends
            try:
                ready.get(timeout=0.1)
            except queue.Empty:
                pass


def _loader_processes(workers: int | None, files: int) -> int:
    """How many loader processes a run of ``files`` files gets (1: the loader thread, no process)."""
    if workers is None:
        return default_workers() if files >= POOL_MIN_FILES and _unguarded_main() is None else 1
    if workers == 1 or files < 2:
        return 1
    script = _unguarded_main()
    if script is not None:
        raise SixfoldError(
            f"{workers} loader workers are processes that start by re-running {script}, which has no "
            '`if __name__ == "__main__":` guard: add one around what the script does, or index with workers=1'
        )
    return min(workers, files)


_GUARD = re.compile(r"""__name__\s*==\s*["']__main__["']|["']__main__["']\s*==\s*__name__""")


def _unguarded_main() -> str | None:
    """The main script when spawned processes would re-run it and it has no ``__name__ == "__main__"`` guard (they
    would index again, recursively), else None. A package's ``__main__`` and an interactive session are not re-run."""
    main = sys.modules.get("__main__")
    name = getattr(getattr(main, "__spec__", None), "name", None) or ""
    path = getattr(main, "__file__", None)
    if not path or name == "__main__" or name.endswith(".__main__"):
        return None
    try:
        source = Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None  # nothing to re-run that can be read: spawning will tell
    return None if _GUARD.search(source) else path


def _prepare_in_processes(
    todo: list[Job],
    counter: TokenCounter,
    chunk_sizes: tuple[int, int],
    report: IndexReport,
    progress: Progress,
    limits: LoadLimits | None,
    workers: int,
) -> Generator[Prepared | None, None, None]:
    """``_prepare_ahead`` in ``workers`` loader processes: at most ``AHEAD_PER_WORKER`` files each in flight, taken
    in file order, so what is yielded (and reported) is what the loader thread yields, file by file.

    The processes are spawned (not forked: the parent's torch, FAISS and DuckDB threads are running) and each builds
    its chunker from ``counter``. Only preparation moves there: the embedder and every index write stay in this
    process, so a Ctrl-C or a dying worker leaves the index as an interrupted one-thread run does (the last commit).
    """
    pool = ProcessPoolExecutor(
        max_workers=workers,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=start_worker,
        initargs=(counter, chunk_sizes[0], chunk_sizes[1], limits, prepare.WORKER_NICENESS),
    )
    pending: deque[Future] = deque()
    jobs = iter(todo)
    finished = False
    try:
        while True:
            try:
                while len(pending) < workers * AHEAD_PER_WORKER and (job := next(jobs, None)) is not None:
                    pending.append(pool.submit(prepare_in_worker, job))
                if not pending:
                    break
                item = pending.popleft().result()
            except BrokenProcessPool:
                raise SixfoldError(
                    "a loader process stopped unexpectedly (killed, or out of memory); the index keeps what was committed "
                    "before: run the same command again to go on, or use --workers 1"
                ) from None
            yield _delivered(item, report, progress)
        finished = True
    finally:
        if not finished:  # stopped early (an error, Ctrl-C, the consumer gone): the files in flight are not wanted
            for future in pending:
                future.cancel()
            for process in list((getattr(pool, "_processes", None) or {}).values()):  # do not wait for a gzip bomb to finish
                process.terminate()
        pool.shutdown(wait=True, cancel_futures=True)


FOLDER_SAMPLE = 40  # files read to tell a folder's languages before its index is created


def folder_languages(folder: str | Path, sample: int = FOLDER_SAMPLE, follow_links: bool = False) -> Counter:
    """The detected languages of up to ``sample`` files spread evenly over ``folder`` (files that cannot be read, or
    whose language cannot be told, are not counted). Cheap next to indexing: the files are only loaded."""
    source = Path(folder).expanduser()
    if not source.is_dir():
        return Counter()
    paths, _unsupported = walk_folder(source, follow_links=follow_links)
    step = max(1, len(paths) / sample)
    picked = [paths[int(i * step)] for i in range(min(sample, len(paths)))]
    found: Counter = Counter()
    for path in picked:
        try:
            language = detect(load_document(path, LoadLimits(max_file_mb=5)).text).language
        except Exception:  # a file the run itself will skip (and report)
            continue
        if language != UNDETERMINED:
            found[language] += 1
    return found
