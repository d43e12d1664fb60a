"""walk -> diff against the stored content hashes -> load -> chunk -> embed -> commit.

Only new, changed, renamed and deleted files are touched. Loading and chunking run one file ahead
in a thread while the model embeds, and chunks of several files are embedded in one batch, so the
pipeline runs close to the model's raw speed. Work is committed every ``commit_every`` chunks, so an
interrupted run keeps what it finished and the next run picks up the rest.
"""

from __future__ import annotations

import errno
import hashlib
import os
import queue
import stat
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from sixfold.indexer.chunking import Chunk, Chunker
from sixfold.indexer.embedding import Embedder
from sixfold.indexer.loaders import (
    LoadError,
    LoaderUnavailable,
    LoadLimits,
    format_suffix,
    is_supported,
    load_document,
    unavailable,
)
from sixfold.indexer.store import IndexSettings, IndexStore

from sixfold.core.errors import SixfoldError

COMMIT_EVERY = int(os.environ.get("SIXFOLD_COMMIT_EVERY", "20000"))
EMBED_GROUP = 512  # chunks gathered across files before one encode call


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


@dataclass
class _Prepared:
    rel: str
    sha256: str
    size: int
    mtime: float
    title: str | None
    chunks: list[Chunk]
    replaces: bool


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
    """Supported files under ``folder`` (sorted, hidden entries skipped) and a count of the others by suffix.

    Nothing is opened here. A symbolic link is followed when its target lies inside ``folder`` (a file; a folder
    inside is walked at its own path anyway), or anywhere with ``follow_links``. What is not indexed for a reason
    the user should hear (a link out of the folder, a broken link, a link loop, a FIFO, socket or device, a name
    that is not UTF-8) is appended to ``skipped`` as (path, reason); a FIFO is never opened (it would block).
    """
    root = folder.resolve()
    files: list[Path] = []
    unsupported: Counter = Counter()

    def skip(path: Path, reason: str) -> None:
        if skipped is not None:
            skipped.append((_shown(path.relative_to(folder).as_posix()), reason))

    def inside(target: Path) -> bool:
        return target == root or root in target.parents

    seen: set[tuple[int, int]] = set()
    stack: list[Path] = [folder]
    while stack:
        directory = stack.pop()
        try:
            info = os.stat(directory)
            if (info.st_dev, info.st_ino) in seen:
                continue
            seen.add((info.st_dev, info.st_ino))
            with os.scandir(directory) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError as exc:
            skip(directory, f"cannot list the folder: {exc.strerror or exc}")
            continue
        subfolders: list[Path] = []
        for entry in entries:
            if entry.name.startswith("."):
                continue
            path = directory / entry.name
            try:
                entry.name.encode("utf-8")
            except UnicodeEncodeError:
                skip(path, "the name is not valid UTF-8 (rename it to index it)")
                continue
            try:
                if entry.is_symlink():
                    try:
                        target = path.resolve(strict=True)
                        mode = os.stat(target).st_mode
                    except (RuntimeError, OSError) as exc:
                        if isinstance(exc, RuntimeError) or getattr(exc, "errno", None) == errno.ELOOP:
                            skip(path, "symbolic link loop")
                        elif isinstance(exc, FileNotFoundError):
                            skip(path, "broken symbolic link (its target does not exist)")
                        else:
                            skip(path, f"symbolic link that cannot be followed: {exc.strerror or exc}")
                        continue
                    if stat.S_ISDIR(mode):
                        if inside(target):
                            if directory.resolve().is_relative_to(target):
                                skip(path, "symbolic link to a folder that holds it (a loop; not followed)")
                            continue  # a folder inside: walked at its own path
                        if follow_links:
                            subfolders.append(path)
                        else:
                            skip(path, "symbolic link to a folder outside the indexed folder (--follow-links follows it)")
                        continue
                    if not stat.S_ISREG(mode):
                        skip(path, f"symbolic link to {_kind(mode)}, not a file")
                        continue
                    if not is_supported(path):
                        unsupported[path.suffix.lower() or "(none)"] += 1
                    elif inside(target) or follow_links:
                        files.append(path)
                    else:
                        skip(path, "symbolic link to a file outside the indexed folder (--follow-links follows it)")
                    continue
                mode = entry.stat(follow_symlinks=False).st_mode
            except OSError as exc:
                skip(path, f"cannot read: {exc.strerror or exc}")
                continue
            if stat.S_ISDIR(mode):
                subfolders.append(path)
            elif not stat.S_ISREG(mode):
                skip(path, f"{_kind(mode)}, not a file")
            elif is_supported(path):
                files.append(path)
            else:
                unsupported[path.suffix.lower() or "(none)"] += 1
        stack.extend(reversed(subfolders))
    return files, unsupported


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
) -> IndexReport:
    """Bring the index up to date with ``folder``; returns what changed.

    ``limits`` caps what one file may make the loader read (``LoadLimits``); ``follow_links`` follows symbolic
    links that leave ``folder`` (by default they are skipped and reported)."""
    started = time.perf_counter()
    progress = progress or _Silent()
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
    root = str(source)
    report = IndexReport(folder=root)
    walk_skipped: list[tuple[str, str]] = []
    paths, unsupported = walk_folder(source, follow_links=follow_links, skipped=walk_skipped)
    report.unsupported = dict(unsupported)

    txn = store.begin(settings)
    report.repaired = list(txn.repaired)
    try:
        if txn.settings.model != embedder.name:
            raise SixfoldError(
                f"this index was built with the model {txn.settings.model}, not {embedder.name}; "
                "omit --model or index into a new folder"
            )
        if txn.settings.dim != embedder.dim:
            raise SixfoldError(f"model {embedder.name} gives {embedder.dim}-d vectors but the index holds {txn.settings.dim}-d")
        chunker = Chunker(embedder.tokenizer, txn.settings.chunk_tokens, txn.settings.overlap_tokens)
        known = {p: h for (r, p), (h, _n) in txn.file_records().items() if r == root}
        if not paths and not known:
            raise SixfoldError(f"folder {folder} has no files to index (supported: .txt .md .html .pdf .docx, also gzipped)")
        for rel, reason in walk_skipped:  # links out of the folder, FIFOs, broken links: said, not silently dropped
            report.skipped.append((rel, reason))
            progress.warn(f"skipped {rel}: {reason}")
        current: dict[str, tuple[Path, str]] = {}
        for path in paths:
            try:
                current[path.relative_to(source).as_posix()] = (path, file_sha256(path))
            except OSError as exc:
                report.skipped.append((str(path.relative_to(source)), f"cannot read: {exc.strerror or exc}"))
                progress.warn(f"skipped {path.relative_to(source)}: cannot read: {exc.strerror or exc}")

        gone = [p for p in known if p not in current]
        by_hash = {}
        for p in gone:
            by_hash.setdefault(known[p], []).append(p)
        todo: list[tuple[str, Path, str, bool]] = []
        for rel, (path, digest) in current.items():
            if rel in known:
                if known[rel] == digest:
                    report.unchanged += 1
                else:
                    todo.append((rel, path, digest, True))
            elif by_hash.get(digest):
                old = by_hash[digest].pop()
                gone.remove(old)
                txn.rename_file(root, old, rel)
                report.renamed += 1
            else:
                todo.append((rel, path, digest, False))
        for rel in gone:
            report.chunks_removed += txn.remove_file(root, rel)
            report.removed += 1
        # Files that failed to load before are retried; any that still fail are reported again.

        progress.start(len(todo))
        pending_chunks = 0
        group: list[_Prepared] = []

        def flush() -> None:
            nonlocal pending_chunks
            if not group:
                return
            texts = [c.text for item in group for c in item.chunks]
            vectors = embedder.encode(texts, batch_size=batch_size)
            offset = 0
            for item in group:
                n = len(item.chunks)
                if item.replaces:
                    report.chunks_removed += txn.remove_file(root, item.rel)
                    report.updated += 1
                else:
                    report.added += 1
                txn.add_file(
                    root, item.rel, item.sha256, item.size, item.mtime, item.title, item.chunks, vectors[offset : offset + n]
                )
                offset += n
                report.chunks_added += n
            progress.advance(files=len(group), chunks=len(texts))
            pending_chunks += len(texts)
            group.clear()

        for item in _prepare_ahead(todo, chunker, report, progress, limits):
            if item is None:
                progress.advance(files=1, chunks=0)
                continue
            group.append(item)
            if sum(len(g.chunks) for g in group) >= EMBED_GROUP:
                flush()
                if pending_chunks >= commit_every:
                    report.generation = txn.commit()
                    txn = store.begin()
                    pending_chunks = 0
        flush()
        if txn.changed or not store.exists():
            report.generation = txn.commit()
        else:
            txn.abort()
    except BaseException:
        txn.abort()
        raise
    report.seconds = time.perf_counter() - started
    return report


def _prepare_ahead(
    todo: list[tuple[str, Path, str, bool]],
    chunker: Chunker,
    report: IndexReport,
    progress: Progress,
    limits: LoadLimits | None = None,
) -> Iterator[_Prepared | None]:
    """Load and chunk files in a thread, a few files ahead of the embedder. ``None`` marks a skipped file.

    A file that cannot be read is skipped with a warning; a format whose library does not import
    (``LoaderUnavailable``) stops the run: every file of that format would be skipped for a fault of the install.
    """
    ready: queue.Queue = queue.Queue(maxsize=8)
    stop = threading.Event()
    done = object()

    def work() -> None:
        try:
            for rel, path, digest, replaces in todo:
                if stop.is_set():
                    return
                try:
                    document = load_document(path, limits)
                    chunks = chunker.split(document)
                    if not chunks:
                        raise LoadError("no text to index")
                    info = path.stat()
                    item: object = _Prepared(rel, digest, info.st_size, info.st_mtime, document.title, chunks, replaces)
                except LoaderUnavailable as exc:
                    ready.put(("fatal", exc))
                    return
                except LoadError as exc:
                    item = ("skip", rel, str(exc), replaces)
                except ImportError as exc:  # a library importing a helper of its own lazily
                    ready.put(("fatal", unavailable(format_suffix(path), exc.name or "a library", exc)))
                    return
                except Exception as exc:  # a library choking on a malformed file must not stop the run
                    item = ("skip", rel, f"{type(exc).__name__}: {exc}", replaces)
                ready.put(item)
        finally:
            ready.put(done)

    thread = threading.Thread(target=work, name="sixfold-loader", daemon=True)
    thread.start()
    try:
        while True:
            item = ready.get()
            if item is done:
                break
            if isinstance(item, tuple) and item[0] == "fatal":
                raise item[1]
            if isinstance(item, tuple):
                _, rel, reason, _replaces = item
                reason = " ".join(reason.split())  # one line: library messages may span several
                report.skipped.append((rel, reason))
                progress.warn(f"skipped {rel}: {reason}")
                yield None
            else:
                yield item
    finally:
        stop.set()
        while thread.is_alive():
            try:
                ready.get(timeout=0.1)
            except queue.Empty:
                pass
