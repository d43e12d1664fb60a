"""walk -> diff against the stored content hashes -> load -> chunk -> embed -> commit.

Only new, changed, renamed and deleted files are touched. Loading and chunking run one file ahead
in a thread while the model embeds, and chunks of several files are embedded in one batch, so the
pipeline runs close to the model's raw speed. Work is committed every ``commit_every`` chunks, so an
interrupted run keeps what it finished and the next run picks up the rest.
"""

from __future__ import annotations

import hashlib
import os
import queue
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from indexer.chunking import Chunk, Chunker
from indexer.embedding import Embedder
from indexer.errors import SixfoldError
from indexer.loaders import LoadError, is_supported, load_document
from indexer.store import IndexSettings, IndexStore

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


def walk_folder(folder: Path) -> tuple[list[Path], Counter]:
    """Supported files under ``folder`` (sorted, hidden entries skipped) and a count of the others by suffix."""
    files: list[Path] = []
    unsupported: Counter = Counter()
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            if name.startswith("."):
                continue
            path = Path(dirpath) / name
            if not path.is_file():
                continue
            if is_supported(path):
                files.append(path)
            else:
                unsupported[path.suffix.lower() or "(none)"] += 1
    return files, unsupported


def index_folder(
    store: IndexStore,
    folder: str | Path,
    embedder: Embedder,
    settings: IndexSettings | None = None,
    progress: Progress | None = None,
    batch_size: int = 64,
    commit_every: int = COMMIT_EVERY,
) -> IndexReport:
    """Bring the index up to date with ``folder``; returns what changed."""
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
    paths, unsupported = walk_folder(source)
    report.unsupported = dict(unsupported)

    txn = store.begin(settings)
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

        for item in _prepare_ahead(todo, chunker, report, progress):
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
    todo: list[tuple[str, Path, str, bool]], chunker: Chunker, report: IndexReport, progress: Progress
) -> Iterator[_Prepared | None]:
    """Load and chunk files in a thread, a few files ahead of the embedder. ``None`` marks a skipped file."""
    ready: queue.Queue = queue.Queue(maxsize=8)
    stop = threading.Event()
    done = object()

    def work() -> None:
        try:
            for rel, path, digest, replaces in todo:
                if stop.is_set():
                    return
                try:
                    document = load_document(path)
                    chunks = chunker.split(document)
                    if not chunks:
                        raise LoadError("no text to index")
                    stat = path.stat()
                    item: object = _Prepared(rel, digest, stat.st_size, stat.st_mtime, document.title, chunks, replaces)
                except LoadError as exc:
                    item = ("skip", rel, str(exc), replaces)
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
            if isinstance(item, tuple):
                _, rel, reason, _replaces = item
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
