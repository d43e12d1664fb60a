"""The index directory: FAISS vectors + tantivy lexical index + DuckDB chunks/metadata, committed atomically.

Layout::

    idx/
      sixfold-index.json     pointer: format and the current generation (replaced atomically)
      gen-000007/            one complete, consistent generation
        chunks.duckdb        files (content hashes), chunks (text, metadata, embeddings), meta
        vectors.faiss        chunk_id -> vector
        lexical/             tantivy BM25 index of the chunk text
      .lock                  held by the one writer

A write copies the current generation into ``gen-N.tmp``, applies its changes there, fsyncs, renames it
to ``gen-N`` and only then swaps the pointer. Readers always see a whole generation; a run killed at any
point leaves the previous one untouched, and the next run redoes what was not committed.
Embeddings and chunk text are kept in DuckDB as well, so the FAISS and tantivy indexes can be rebuilt (type
change, repair, exact BM25 statistics after deletions) without re-embedding.

Damage is repaired or worked around, never made worse: a missing or garbled pointer, or a current generation
whose DuckDB cannot be read, falls back to the newest generation that can (with a warning on the ``sixfold.index``
logger, which the CLI user sees on stderr); a damaged ``vectors.faiss`` or ``lexical/`` is rebuilt from DuckDB (by
the next write for good, in memory for a reader). Generations that cannot be read are deleted only after a newer
good one is committed.
"""

from __future__ import annotations

import errno
import fcntl
import functools
import json
import logging
import os
import re
import shutil
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

import duckdb
import faiss
import numpy as np
import pyarrow as pa

from sixfold.core.errors import SixfoldError, first_line
from sixfold.indexer import vectors as vec
from sixfold.indexer.chunking import Chunk
from sixfold.indexer.language import detect
from sixfold.indexer.lexical import LexicalIndex, check_language, document_text

FORMAT_VERSION = 1
POINTER = "sixfold-index.json"
DB_FILE = "chunks.duckdb"
FAISS_FILE = "vectors.faiss"
LEXICAL_DIR = "lexical"
# Embeddings read from DuckDB at a time when a vector index is (re)built: ~150 MB of 384-d float32.
EMBEDDING_BLOCK = 100_000
# What DuckDB may cache beyond what it holds already while a rebuild reads every embedding (see ``_build_vectors``).
REBUILD_CACHE_BYTES = 1 << 30
_GENERATION = re.compile(r"^gen-(\d{6,})$")
log = logging.getLogger("sixfold.index")


@dataclass(frozen=True)
class NewFile:
    """A file to add to an index (``Transaction.add_files``): its record and its chunks; ``language`` is the
    document's detected language (None: detected from its chunks)."""

    path: str
    sha256: str
    size: int
    mtime: float
    title: str | None
    chunks: list[Chunk]
    language: str | None = None


def _extension(path: str) -> str:
    return Path(path).suffix.lower().lstrip(".")


@dataclass
class IndexSettings:
    """What an index is built with; fixed at creation (the model and its dimension above all)."""

    model: str
    dim: int
    index_type: str = "auto"
    chunk_tokens: int = 200
    overlap_tokens: int = 40
    language: str = "auto"  # "auto": each document's detected language; else a code (or "none") for every chunk
    lexical: str = "per-language"  # BM25 fields: one per language (since 0.4); "single" in older indexes


# What --where reads. ``language`` is the chunk's (its document's detected language, or the index's --language).
CHUNK_META = """
    SELECT c.chunk_id, c.root, c.path, c.ext, c.chunk_index, c.title, c.heading, c.page, c.start_char,
           c.end_char, c.text, c.language, f.sha256, f.size, f.mtime, f.indexed_at
    FROM chunks c JOIN files f USING (root, path)"""
SCHEMA = f"""
CREATE TABLE meta (key VARCHAR PRIMARY KEY, value VARCHAR);
CREATE TABLE files (
    root VARCHAR, path VARCHAR, sha256 VARCHAR, size BIGINT, mtime DOUBLE, title VARCHAR,
    n_chunks INTEGER, indexed_at TIMESTAMP DEFAULT current_timestamp, PRIMARY KEY (root, path));
CREATE TABLE chunks (
    chunk_id BIGINT PRIMARY KEY, root VARCHAR, path VARCHAR, ext VARCHAR, chunk_index INTEGER,
    title VARCHAR, heading VARCHAR, page INTEGER, start_char INTEGER, end_char INTEGER, text VARCHAR,
    embedding FLOAT[{{dim}}], language VARCHAR);
CREATE VIEW chunk_meta AS {CHUNK_META};
"""


def _fsync_tree(folder: Path) -> None:
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            with open(path, "rb") as handle:
                os.fsync(handle.fileno())
    _fsync_dir(folder)


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _dir_size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def _is_no_space(exc: BaseException) -> bool:
    """ENOSPC, as an OSError or as the text of a DuckDB / FAISS / tantivy error."""
    if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
        return True
    return isinstance(exc, (OSError, RuntimeError, ValueError, duckdb.Error)) and "no space left on device" in str(exc).lower()


def _disk_errors(method):
    """Turn a full disk inside a Transaction method into one clear error (the caller aborts, freeing the tmp)."""

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        try:
            return method(self, *args, **kwargs)
        except SixfoldError:
            raise
        except Exception as exc:
            if _is_no_space(exc):
                raise SixfoldError(
                    f"no space left on device at {self.store.root}; free some space and run the command again "
                    "(the index keeps its last committed state)"
                ) from None
            raise

    return wrapper


def _generation_number(name: str) -> int | None:
    match = _GENERATION.match(name)
    return int(match.group(1)) if match else None


def _probe(folder: Path) -> tuple[IndexSettings | None, str]:
    """(settings, '') when a generation's DuckDB opens read-only with its metadata, else (None, why not)."""
    if not (folder / DB_FILE).is_file():
        return None, f"no {DB_FILE}"
    try:
        con = duckdb.connect(str(folder / DB_FILE), read_only=True)
    except duckdb.Error as exc:
        return None, f"cannot read {DB_FILE}: {first_line(exc)}"
    try:
        settings, _meta = _read_settings(con)
        con.execute("SELECT count(*) FROM chunks").fetchall()
        return settings, ""
    except (duckdb.Error, KeyError, ValueError) as exc:
        return None, f"cannot read {DB_FILE}: {first_line(exc)}"
    finally:
        con.close()


def _read_vectors(path: Path, dim: int, n_chunks: int) -> tuple[faiss.Index | None, str]:
    """(index, '') when ``path`` holds ``n_chunks`` vectors of dimension ``dim``, else (None, what is wrong)."""
    if not path.is_file():
        return None, "missing"
    try:
        index = faiss.read_index(str(path))
    except RuntimeError as exc:
        return None, f"unreadable: {first_line(exc)}"
    if index.d != dim:
        return None, f"vectors have dimension {index.d}, the index {dim}"
    if index.ntotal != n_chunks:
        return None, f"{index.ntotal} vectors for {n_chunks} chunks"
    return index, ""


def _repair_hint(con: duckdb.DuckDBPyConnection, root: Path) -> str:
    """The command that repairs the index: ``sixfold index`` of the folder it was built from."""
    try:
        folders = [r[0] for r in con.execute("SELECT DISTINCT root FROM files ORDER BY root").fetchall()]
    except duckdb.Error:
        folders = []
    folder = folders[0] if len(folders) == 1 else "FOLDER"
    return f"run `sixfold index {folder} --index {root}` to repair it"


def _chunk_batches(con: duckdb.DuckDBPyConnection, columns: str, batch: int) -> Iterator[list[tuple]]:
    """Rows of (chunk_id, ``columns``) of every chunk in id order, ``batch`` at a time (keyset paging, no OFFSET)."""
    last = -1
    while True:
        rows = con.execute(
            f"SELECT chunk_id, {columns} FROM chunks WHERE chunk_id > ? ORDER BY chunk_id LIMIT ?", [last, batch]
        ).fetchall()
        if not rows:
            return
        last = rows[-1][0]
        yield rows


def _language_column(con: duckdb.DuckDBPyConnection, settings: IndexSettings) -> str:
    """How to select a chunk's language: its column, or (an index made before there was one) the index's language."""
    columns = {row[0] for row in con.execute("DESCRIBE chunks").fetchall()}
    return "language" if "language" in columns else f"'{settings.language}' AS language"


def _lexical_rows(
    con: duckdb.DuckDBPyConnection, settings: IndexSettings, batch: int = 4096
) -> Iterator[tuple[list[int], list[str], list[str | None]]]:
    """(ids, texts, languages) batches of every chunk as BM25 reads it (see ``document_text``), in id order."""
    for rows in _chunk_batches(con, f"heading, text, {_language_column(con, settings)}", batch):
        yield [r[0] for r in rows], [document_text(r[2], r[1]) for r in rows], [r[3] for r in rows]


def _open_lexical(path: Path | None, settings: IndexSettings, create: bool = False) -> LexicalIndex:
    return LexicalIndex(path, settings.language, create=create, per_language=settings.lexical == "per-language")


def _build_lexical(path: Path | None, settings: IndexSettings, con: duckdb.DuckDBPyConnection) -> LexicalIndex:
    """The lexical index of every chunk in ``con``, built afresh (a repair, or after deletions)."""
    rows = _lexical_rows(con, settings)
    return LexicalIndex.build(path, settings.language, rows, per_language=settings.lexical == "per-language")


def _add_language_column(con: duckdb.DuckDBPyConnection, settings: IndexSettings) -> None:
    """An index made before per-chunk languages gains the column (its one language) when it is next written."""
    if _language_column(con, settings) == "language":
        return
    con.execute(f"ALTER TABLE chunks ADD COLUMN language VARCHAR DEFAULT '{settings.language}'")
    con.execute(f"CREATE OR REPLACE VIEW chunk_meta AS {CHUNK_META}")


def _dicts(relation: duckdb.DuckDBPyConnection) -> list[dict]:
    """A query's rows as dicts keyed by column name."""
    names = [d[0] for d in relation.description]
    return [dict(zip(names, row)) for row in relation.fetchall()]


class IndexStore:
    """An index directory on disk (it may not exist yet)."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root).expanduser().resolve()
        self.notes: list[str] = []  # the fallbacks this store took, each once (also logged as warnings)
        self._lock_handle = None
        self._lock_owner: int | None = None
        self._fallback_cache: tuple[tuple, dict] | None = None

    @property
    def pointer_path(self) -> Path:
        return self.root / POINTER

    def exists(self) -> bool:
        """A pointer or a committed generation is there (a lost pointer does not make an index new)."""
        return self.pointer_path.is_file() or bool(self.generations())

    def generations(self) -> list[Path]:
        """The committed (renamed into place) generation folders, oldest first."""
        if not self.root.is_dir():
            return []
        found = [(n, p) for p in self.root.iterdir() if (n := _generation_number(p.name)) is not None and p.is_dir()]
        return [p for _n, p in sorted(found)]

    def note(self, message: str) -> None:
        if message not in self.notes:
            self.notes.append(message)
            log.warning("warning: %s", message)

    def check_usable_for_new(self) -> None:
        """Refuse to create an index in a folder that holds other things."""
        if self.root.exists() and not self.root.is_dir():
            raise SixfoldError(f"index path {self.root} is a file, not a folder")
        if self.root.is_dir() and not self.exists():
            others = [p.name for p in self.root.iterdir() if p.name not in (".lock",) and not p.name.startswith("gen-")]
            if others:
                raise SixfoldError(f"{self.root} is not a sixfold index and is not empty; choose another --index folder")

    def read_pointer(self, verify: bool = False) -> dict:
        """The current generation: the pointer's, or the newest readable one when the pointer or its generation is
        damaged (then with ``"damage"``: what was wrong). ``verify`` also opens the pointer's DuckDB."""
        if not self.root.exists():
            raise SixfoldError(f"no index at {self.root} (create one with: sixfold index FOLDER --index {self.root})")
        damage = ""
        generation = None
        if not self.pointer_path.is_file():
            if not self.generations():
                raise SixfoldError(f"{self.root} is not a sixfold index (no {POINTER})")
            damage = f"{POINTER} is missing"
        else:
            try:
                pointer = json.loads(self.pointer_path.read_text())
                generation = pointer["generation"]
                if not isinstance(generation, str) or _generation_number(generation) is None:
                    raise ValueError(f"bad generation name {generation!r}")
            except (OSError, ValueError, KeyError, TypeError) as exc:
                damage = f"{POINTER} is unreadable ({first_line(exc)})"
                generation = None
            else:
                if pointer.get("format") != FORMAT_VERSION:
                    raise SixfoldError(
                        f"index at {self.root} has format {pointer.get('format')}; this sixfold reads {FORMAT_VERSION}"
                    )
                folder = self.root / generation
                if not folder.is_dir():
                    damage = f"its current generation {generation} is missing"
                elif verify or not (folder / DB_FILE).is_file():
                    _settings, why = _probe(folder)
                    if why:
                        damage = f"its current generation {generation} is damaged ({why})"
                if not damage:
                    return pointer
        return self._fallback(damage, skip=generation)

    def _fallback(self, damage: str, skip: str | None = None) -> dict:
        """The newest readable generation (other than ``skip``), as a pointer; a clear error when there is none."""
        key = (damage, skip, tuple(p.name for p in self.generations()))
        if self._fallback_cache and self._fallback_cache[0] == key:
            self.note(self._fallback_cache[1]["note"])
            return dict(self._fallback_cache[1])
        tried = []
        for folder in reversed(self.generations()):
            if folder.name == skip:
                continue
            settings, why = _probe(folder)
            if settings is None:
                tried.append(f"{folder.name}: {why}")
                continue
            note = (
                f"index at {self.root} is damaged: {damage}; using the newest readable generation {folder.name} "
                "(the next `sixfold index` of its folder makes it current again)"
            )
            pointer = {
                "format": FORMAT_VERSION,
                "generation": folder.name,
                "model": settings.model,
                "dim": settings.dim,
                "damage": damage,
                "note": note,
            }
            self._fallback_cache = (key, pointer)
            self.note(note)
            return dict(pointer)
        others = f"no other generation can be read ({'; '.join(tried)})" if tried else "there is no other generation"
        raise SixfoldError(
            f"index at {self.root} is corrupt: {damage}, and {others}; "
            "move the folder away and index your documents again into a new --index folder"
        )

    def open(self) -> Snapshot:
        pointer = self.read_pointer()
        try:
            snapshot = Snapshot(self.root / pointer["generation"])
        except SixfoldError:
            if "damage" in pointer:
                raise
            _settings, why = _probe(self.root / pointer["generation"])
            damage = f"its current generation {pointer['generation']} is damaged ({why or 'unreadable'})"
            pointer = self._fallback(damage, pointer["generation"])
            snapshot = Snapshot(self.root / pointer["generation"])
        if "damage" in pointer:
            snapshot.problems.append(f"{pointer['damage']} (searching generation {pointer['generation']} instead)")
        return snapshot

    def begin(self, settings: IndexSettings | None = None) -> Transaction:
        """Start a write. ``settings`` are needed only when the index does not exist yet."""
        return Transaction(self, settings)

    @contextmanager
    def writer_lock(self) -> Iterator[None]:
        """Hold the one-writer lock for a whole run: take it before slow work (model load, walk, hashing), so a
        second writer is refused at once; every Transaction this thread begins meanwhile reuses it."""
        if self.holds_lock():
            yield
            return
        self._lock_handle = _acquire_lock(self.root)
        self._lock_owner = threading.get_ident()
        try:
            yield
        finally:
            handle, self._lock_handle, self._lock_owner = self._lock_handle, None, None
            _release_lock(handle)

    def holds_lock(self) -> bool:
        return self._lock_handle is not None and self._lock_owner == threading.get_ident()

    def size_on_disk(self) -> int:
        return _dir_size(self.root) if self.root.exists() else 0


def _acquire_lock(root: Path):
    try:
        root.mkdir(parents=True, exist_ok=True)
        handle = open(root / ".lock", "a+")
    except OSError as exc:
        if _is_no_space(exc):
            raise SixfoldError(f"no space left on device at {root}; free some space and run the command again") from None
        why = exc.strerror or exc
        raise SixfoldError(f"cannot write the index at {root} ({why}); it can be searched but not changed") from None
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise SixfoldError(f"another sixfold process is writing the index at {root}; try again when it ends") from None
    return handle


def _release_lock(handle) -> None:
    if handle is not None:
        fcntl.flock(handle, fcntl.LOCK_UN)
        handle.close()


def _read_settings(con: duckdb.DuckDBPyConnection) -> tuple[IndexSettings, dict[str, str]]:
    meta = dict(con.execute("SELECT key, value FROM meta").fetchall())
    settings = IndexSettings(
        model=meta["model"],
        dim=int(meta["dim"]),
        index_type=meta["index_type"],
        chunk_tokens=int(meta["chunk_tokens"]),
        overlap_tokens=int(meta["overlap_tokens"]),
        language=meta["language"],
        lexical=meta.get("lexical", "single"),
    )
    return settings, meta


class Snapshot:
    """A read-only view of one committed generation.

    A damaged ``vectors.faiss`` or ``lexical/`` does not stop searches: it is rebuilt in memory from DuckDB (which
    holds every embedding and chunk text), with a warning and an entry in ``problems`` (see ``health``).
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        try:
            self.con = duckdb.connect(str(folder / DB_FILE), read_only=True)
            self.settings, self.meta = _read_settings(self.con)
        except (duckdb.Error, KeyError, ValueError) as exc:
            raise SixfoldError(f"index at {folder.parent} is corrupt: cannot read {DB_FILE} ({first_line(exc)})") from None
        self.problems: list[str] = []  # damage found so far (worked around)
        self._language = ", " + _language_column(self.con, self.settings)
        self._languages: list[str] | None = None
        self._vectors: faiss.Index | None = None
        self._lexical: LexicalIndex | None = None

    def _damaged(self, what: str, why: str, fallback: str) -> None:
        problem = f"{what} of {self.folder.name} is damaged ({why})"
        if problem not in self.problems:
            self.problems.append(problem)
            hint = _repair_hint(self.con, self.folder.parent)
            log.warning("warning: index at %s: %s; %s; %s", self.folder.parent, problem, fallback, hint)

    @property
    def vectors(self) -> faiss.Index:
        if self._vectors is None:
            index, why = _read_vectors(self.folder / FAISS_FILE, self.settings.dim, self.count_chunks())
            if index is None:
                raise SixfoldError(
                    f"index at {self.folder.parent} is corrupt: cannot read {FAISS_FILE} ({why}); "
                    + _repair_hint(self.con, self.folder.parent)
                )
            self._vectors = vec.to_gpu_if_available(index)
        return self._vectors

    @property
    def lexical(self) -> LexicalIndex:
        if self._lexical is None:
            path = self.folder / LEXICAL_DIR
            why = ""
            try:
                lexical = _open_lexical(path, self.settings)
                if lexical.count() != self.count_chunks():
                    why = f"{lexical.count()} documents for {self.count_chunks()} chunks"
                    lexical.close()
            except SixfoldError as exc:
                why = "missing" if not path.exists() else str(exc).split(": ", 1)[-1]
            except (ValueError, OSError) as exc:  # a segment file that fails only when searched
                why = first_line(exc)
            if why:
                self._damaged(f"{LEXICAL_DIR}/", why, "searching with a BM25 index rebuilt in memory from the chunk text")
                lexical = _build_lexical(None, self.settings, self.con)
            self._lexical = lexical
        return self._lexical

    def health(self) -> list[str]:
        """What is wrong with this generation (empty when ``search`` can use it as it is on disk), each with its fix."""
        _ = self.lexical  # opening it records damage it works around in self.problems
        problems = list(self.problems)
        try:
            _ = self.vectors
        except SixfoldError:  # search cannot work around it (DuckDB has the embeddings: the next index run rebuilds it)
            _index, why = _read_vectors(self.folder / FAISS_FILE, self.settings.dim, self.count_chunks())
            problems.append(f"{FAISS_FILE} of {self.folder.name} is damaged ({why})")
        hint = _repair_hint(self.con, self.folder.parent)
        return [f"{problem}; {hint}" for problem in problems]

    def count_chunks(self) -> int:
        return int(self.con.execute("SELECT count(*) FROM chunks").fetchall()[0][0])

    def count_files(self) -> int:
        return int(self.con.execute("SELECT count(*) FROM files").fetchall()[0][0])

    @property
    def languages(self) -> list[str]:
        """The languages of the chunks, most chunks first (what a query is analysed in, what status shows)."""
        if self._languages is None:
            rows = self.con.execute(
                f"SELECT language, count(*) AS n FROM (SELECT chunk_id{self._language} FROM chunks) "
                "GROUP BY language ORDER BY n DESC, language"
            ).fetchall()
            self._languages = [str(r[0]) for r in rows if r[0] is not None]
        return self._languages

    def language_counts(self) -> dict[str, int]:
        """Chunks per language."""
        rows = self.con.execute(
            f"SELECT language, count(*) FROM (SELECT chunk_id{self._language} FROM chunks) GROUP BY language"
        ).fetchall()
        return {str(r[0]): int(r[1]) for r in rows}

    def chunks(self, ids: list[int]) -> dict[int, dict]:
        """Chunk rows (without embeddings) by id."""
        if not ids:
            return {}
        rel = self.con.execute(
            f"SELECT chunk_id, root, path, ext, chunk_index, title, heading, page, start_char, end_char, text{self._language} "
            "FROM chunks WHERE chunk_id IN (SELECT unnest($ids))",
            {"ids": [int(i) for i in ids]},
        )
        return {row["chunk_id"]: row for row in _dicts(rel)}

    def filter_ids(self, where: str) -> np.ndarray:
        """Chunk ids whose metadata satisfies a SQL WHERE clause over the ``chunk_meta`` view."""
        if ";" in where:
            raise SixfoldError("--where takes one SQL condition, without ';'")
        try:
            rows = self.con.execute(f"SELECT chunk_id FROM chunk_meta WHERE {where}").fetchnumpy()
        except duckdb.Error as exc:
            raise SixfoldError(f"bad --where condition: {first_line(exc)}") from None
        return rows["chunk_id"].astype(np.int64)

    def embeddings(self, ids: list[int] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(ids, vectors) straight from DuckDB, for rebuilding or exact re-scoring."""
        return _load_embeddings(self.con, self.settings.dim, ids)

    def files(self) -> list[dict]:
        return _dicts(
            self.con.execute("SELECT root, path, sha256, size, n_chunks, title, indexed_at FROM files ORDER BY root, path")
        )

    def close(self) -> None:
        if self._lexical is not None:
            self._lexical.close()
            self._lexical = None
        self.con.close()


def _arrow(con: duckdb.DuckDBPyConnection, query: str, params: dict | None = None) -> pa.Table:
    """A query's rows as a pyarrow Table (DuckDB 2 names it to_arrow_table, 1.x arrow)."""
    relation = con.sql(query, params=params)
    fetch = getattr(relation, "to_arrow_table", None) or relation.arrow
    return fetch()


def _load_embeddings(con: duckdb.DuckDBPyConnection, dim: int, ids: list[int] | None) -> tuple[np.ndarray, np.ndarray]:
    if ids is None:
        table = _arrow(con, "SELECT chunk_id, embedding FROM chunks ORDER BY chunk_id")
    else:
        table = _arrow(
            con,
            "SELECT chunk_id, embedding FROM chunks WHERE chunk_id IN (SELECT unnest($ids)) ORDER BY chunk_id",
            {"ids": [int(i) for i in ids]},
        )
    return _embedding_arrays(table, dim)


def _embedding_arrays(table: pa.Table, dim: int) -> tuple[np.ndarray, np.ndarray]:
    """A (chunk_id, embedding) table as int64 ids and a float32 matrix."""
    chunk_ids = table.column("chunk_id").to_numpy().astype(np.int64)
    emb = table.column("embedding").combine_chunks()
    flat = emb.values.to_numpy(zero_copy_only=False) if len(emb) else np.zeros(0, np.float32)
    return chunk_ids, np.ascontiguousarray(flat.reshape(-1, dim), dtype=np.float32)


def _build_vectors(con: duckdb.DuckDBPyConnection, kind: str, dim: int) -> faiss.Index:
    """A fresh vector index of ``kind`` over every embedding in DuckDB, built as ``vec.build_index`` builds one from
    all of them in memory (``vec.build_index_in_blocks``), but read in blocks of ``EMBEDDING_BLOCK`` chunk ids:
    memory holds the index, the training sample and one block, never every embedding at once (15 GB at 10M 384-d
    chunks, twice over while they were copied).

    DuckDB keeps the table blocks it reads cached up to its ``memory_limit``, 80 % of RAM by default, so reading every
    embedding once would fill memory with them beside the new index all the same (measured: 300k chunks, 440 MB of
    vectors, took a flat rebuild to 2.0 GB either way). For the rebuild the cache is capped at what DuckDB holds now
    plus ``REBUILD_CACHE_BYTES`` (never less than it holds, so pending writes stay where they are), then reset."""
    with _duckdb_cache_capped(con, REBUILD_CACHE_BYTES):
        ids = con.execute("SELECT chunk_id FROM chunks ORDER BY chunk_id").fetchnumpy()["chunk_id"].astype(np.int64)

        def training_vectors(rows: np.ndarray) -> np.ndarray:
            chosen = ids[rows]
            got_ids, got = _load_embeddings(con, dim, None if len(rows) == len(ids) else chosen.tolist())
            return got[np.searchsorted(got_ids, chosen)]  # in training order, as build_index takes them

        return vec.build_index_in_blocks(kind, dim, len(ids), training_vectors, _embedding_blocks(con, dim, ids))


@contextmanager
def _duckdb_cache_capped(con: duckdb.DuckDBPyConnection, headroom: int) -> Iterator[None]:
    (used,) = con.execute("SELECT coalesce(sum(memory_usage_bytes), 0) FROM duckdb_memory()").fetchone() or (0,)
    con.execute(f"SET memory_limit = '{int(used) + headroom}B'")
    try:
        yield
    finally:
        con.execute("RESET memory_limit")


def _embedding_blocks(con: duckdb.DuckDBPyConnection, dim: int, ids: np.ndarray) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """The embeddings of ``ids`` (sorted) in id order, ``EMBEDDING_BLOCK`` ids at a time."""
    for start in range(0, len(ids), EMBEDDING_BLOCK):
        block = ids[start : start + EMBEDDING_BLOCK]
        # no ORDER BY: DuckDB's sort held ~1x a block more; rows come in storage order, nearly always the ids' order
        table = _arrow(
            con,
            "SELECT chunk_id, embedding FROM chunks WHERE chunk_id BETWEEN $lo AND $hi",
            {"lo": int(block[0]), "hi": int(block[-1])},
        )
        got_ids, got = _embedding_arrays(table, dim)
        del table
        if len(got_ids) > 1 and not bool(np.all(got_ids[1:] > got_ids[:-1])):
            order = np.argsort(got_ids)
            got_ids, got = got_ids[order], got[order]
        yield got_ids, got


class Transaction:
    """One write to an index: copy the current generation, change the copy, then commit or abort.

    ``repaired`` says what opening it had to fix (a lost pointer, a damaged vectors file or lexical index); the
    commit makes the repair durable.
    """

    # Set by ``_open``; ``abort`` copes with a Transaction whose ``_open`` failed before setting them.
    tmp: Path
    con: duckdb.DuckDBPyConnection
    settings: IndexSettings
    vectors: faiss.Index
    lexical: LexicalIndex

    def __init__(self, store: IndexStore, settings: IndexSettings | None) -> None:
        self.store = store
        self._lock_handle = None if store.holds_lock() else _acquire_lock(store.root)
        try:
            self._open(settings)
        except BaseException:
            self.abort()
            raise

    def _release_lock(self) -> None:
        handle, self._lock_handle = self._lock_handle, None
        _release_lock(handle)

    @_disk_errors
    def _open(self, settings: IndexSettings | None) -> None:
        root = self.store.root
        for stale in root.glob("gen-*.tmp"):  # left by a run that was killed
            shutil.rmtree(stale, ignore_errors=True)
        pointer = self.store.read_pointer(verify=True) if self.store.exists() else None
        previous = pointer["generation"] if pointer else None
        self.previous = previous
        self.repaired: list[str] = []
        # Generations newer than the current one (renamed into place by a run killed before it swapped the pointer,
        # or left when the pointer was lost) are not trusted, nor deleted before this write commits: number past them.
        numbers = [n for p in self.store.generations() if (n := _generation_number(p.name)) is not None]
        self.name = f"gen-{max(numbers, default=0) + 1:06d}"
        self.tmp = root / f"{self.name}.tmp"
        self.tmp.mkdir()
        self.removed_any = False
        self.lexical_deleted = False
        self.changed = False
        if pointer is not None and previous:
            self._copy_previous(root / previous, pointer)
        else:
            self._create(settings)

    def _copy_previous(self, prev: Path, pointer: dict) -> None:
        """Start from the current generation ``prev``: its DuckDB copied, its vectors and lexical index copied or rebuilt."""
        if "damage" in pointer:
            self.repaired.append(f"{pointer['damage']}: made {prev.name}, the newest readable generation, current")
            self.changed = True
        shutil.copy2(prev / DB_FILE, self.tmp / DB_FILE)
        try:
            self.con = duckdb.connect(str(self.tmp / DB_FILE))
            self.settings, meta = _read_settings(self.con)
            _add_language_column(self.con, self.settings)
        except (duckdb.Error, KeyError, ValueError) as exc:
            if _is_no_space(exc):
                raise
            raise SixfoldError(f"index at {self.store.root} is corrupt: cannot read {DB_FILE} ({first_line(exc)})") from None
        n_chunks = int(self.con.execute("SELECT count(*) FROM chunks").fetchall()[0][0])
        self.vectors = self._copy_vectors(prev / FAISS_FILE, n_chunks)
        self.next_id = int(meta.get("next_chunk_id", "0"))
        self.ivf_trained_on = int(meta.get("ivf_trained_on", "0"))
        self.lexical = self._copy_lexical(prev / LEXICAL_DIR, n_chunks)

    def _create(self, settings: IndexSettings | None) -> None:
        """Start a new index: the schema, its settings, empty vectors and lexical index."""
        if settings is None:
            raise SixfoldError(f"no index at {self.store.root}")
        self.settings = settings
        vec.resolve_type(settings.index_type, 0)  # validates the name
        check_language(settings.language)
        self.con = duckdb.connect(str(self.tmp / DB_FILE))
        self.con.execute(SCHEMA.format(dim=int(settings.dim)))
        for key, value in asdict(settings).items():
            self.con.execute("INSERT INTO meta VALUES (?, ?)", [key, str(value)])
        self.con.execute(
            "INSERT INTO meta VALUES ('format', ?), ('created_at', ?)",
            [str(FORMAT_VERSION), time.strftime("%Y-%m-%dT%H:%M:%S")],
        )
        start_kind = "hnsw" if settings.index_type == "hnsw" else "flat"
        self.vectors = vec.empty_index(start_kind, settings.dim)
        self.next_id = 0
        self.ivf_trained_on = 0
        self.lexical = _open_lexical(self.tmp / LEXICAL_DIR, settings, create=True)

    def _copy_vectors(self, source: Path, n_chunks: int) -> faiss.Index:
        """The previous generation's FAISS index; rebuilt from the embeddings in DuckDB when it is missing or damaged."""
        read, why = _read_vectors(source, self.settings.dim, n_chunks)
        if read is not None:
            return read
        rebuilt = _build_vectors(self.con, vec.resolve_type(self.settings.index_type, n_chunks), self.settings.dim)
        self.repaired.append(f"rebuilt {FAISS_FILE} ({why}) from the {rebuilt.ntotal} embeddings in {DB_FILE}")
        self.changed = True  # the repair itself is worth committing
        return rebuilt

    def _copy_lexical(self, source: Path, n_chunks: int) -> LexicalIndex:
        """The previous generation's tantivy index, copied; rebuilt from DuckDB when it is missing or damaged."""
        target = self.tmp / LEXICAL_DIR
        why = ""
        try:
            shutil.copytree(source, target, ignore=shutil.ignore_patterns(".tantivy-*.lock"))
            lexical = _open_lexical(target, self.settings)
            if lexical.count() != n_chunks:
                why = f"{lexical.count()} documents for {n_chunks} chunks"
                lexical.close()
        except FileNotFoundError:
            why = "missing" if not source.exists() else "incomplete"
        except SixfoldError as exc:
            why = str(exc).split(": ", 1)[-1]
        except (ValueError, OSError) as exc:
            if _is_no_space(exc):
                raise
            why = first_line(exc)
        if not why:
            return lexical
        shutil.rmtree(target, ignore_errors=True)
        lexical = _build_lexical(target, self.settings, self.con)
        self.repaired.append(f"rebuilt {LEXICAL_DIR}/ ({why}) from the {n_chunks} chunks in {DB_FILE}")
        self.changed = True
        return lexical

    # ---- reads -------------------------------------------------------------------------------
    def file_records(self) -> dict[tuple[str, str], tuple[str, int]]:
        """(root, path) -> (sha256, n_chunks) for every indexed file."""
        rows = self.con.execute("SELECT root, path, sha256, n_chunks FROM files").fetchall()
        return {(r, p): (h, n) for r, p, h, n in rows}

    # ---- changes -----------------------------------------------------------------------------
    @_disk_errors
    def remove_file(self, root: str, path: str) -> int:
        ids = [r[0] for r in self.con.execute("SELECT chunk_id FROM chunks WHERE root = ? AND path = ?", [root, path]).fetchall()]
        if ids:
            id_array = np.asarray(ids, dtype=np.int64)
            if vec.index_kind(self.vectors) == "hnsw":
                self.removed_any = True  # HNSW cannot remove: rebuilt from DuckDB at commit
            else:
                vec.remove_ids(self.vectors, id_array)
            self.lexical.delete(ids)
            self.lexical_deleted = True  # tantivy keeps deleted documents in its BM25 statistics: rebuilt at commit
            self.con.execute("DELETE FROM chunks WHERE root = ? AND path = ?", [root, path])
        self.con.execute("DELETE FROM files WHERE root = ? AND path = ?", [root, path])
        self.changed = True
        return len(ids)

    @_disk_errors
    def rename_file(self, root: str, old: str, new: str) -> None:
        """Same content under a new name: move the rows, keep the vectors."""
        self.con.execute(
            "UPDATE files SET path = ?, indexed_at = current_timestamp WHERE root = ? AND path = ?", [new, root, old]
        )
        self.con.execute("UPDATE chunks SET path = ?, ext = ? WHERE root = ? AND path = ?", [new, _extension(new), root, old])
        self.changed = True

    def add_file(
        self,
        root: str,
        path: str,
        sha256: str,
        size: int,
        mtime: float,
        title: str | None,
        chunks: list[Chunk],
        embeddings: np.ndarray,
        language: str | None = None,
    ) -> None:
        """One file's chunks and their vectors. ``language``: the document's detected language; an index with a
        fixed ``--language`` records that instead."""
        self.add_files(root, [NewFile(path, sha256, size, mtime, title, chunks, language)], embeddings)

    @_disk_errors
    def add_files(self, root: str, files: list[NewFile], embeddings: np.ndarray) -> None:
        """Several files' chunks, with the vectors of all their chunks in file order, in one insert per table, one
        FAISS add and one BM25 add: per file, those calls cost the indexing pipeline ~5 ms (docs/benchmarks.md,
        "Loader workers"), as much CPU as loading and chunking the file. Chunk ids follow the files' order."""
        languages = [self._language_of(f) for f in files]
        n = sum(len(f.chunks) for f in files)
        if embeddings.shape != (n, self.settings.dim):
            raise SixfoldError(f"embedding shape {embeddings.shape} does not match {n} chunks of dimension {self.settings.dim}")
        ids = list(range(self.next_id, self.next_id + n))
        self.next_id += n
        if n:
            chunks = [c for f in files for c in f.chunks]
            each = [(f, language) for f, language in zip(files, languages, strict=True) for _ in f.chunks]
            table = pa.table(
                {
                    "chunk_id": pa.array(ids, pa.int64()),
                    "root": [root] * n,
                    "path": [f.path for f, _ in each],
                    "ext": [_extension(f.path) for f, _ in each],
                    "chunk_index": pa.array([i for f in files for i in range(len(f.chunks))], pa.int32()),
                    "title": [f.title for f, _ in each],
                    "heading": [c.heading for c in chunks],
                    "page": pa.array([c.page for c in chunks], pa.int32()),
                    "start_char": pa.array([c.start_char for c in chunks], pa.int32()),
                    "end_char": pa.array([c.end_char for c in chunks], pa.int32()),
                    "text": [c.text for c in chunks],
                    "embedding": pa.FixedSizeListArray.from_arrays(
                        pa.array(embeddings.reshape(-1), pa.float32()), self.settings.dim
                    ),
                    "language": [language for _, language in each],
                }
            )
            self.con.register("new_chunks", table)
            self.con.execute("INSERT INTO chunks SELECT * FROM new_chunks")
            self.con.unregister("new_chunks")
            self.vectors.add_with_ids(embeddings, np.asarray(ids, dtype=np.int64))
            self.lexical.add(ids, [document_text(c.text, c.heading) for c in chunks], [language for _, language in each])
        records = pa.table(
            {
                "root": [root] * len(files),
                "path": [f.path for f in files],
                "sha256": [f.sha256 for f in files],
                "size": pa.array([f.size for f in files], pa.int64()),
                "mtime": pa.array([f.mtime for f in files], pa.float64()),
                "title": pa.array([f.title for f in files], pa.string()),
                "n_chunks": pa.array([len(f.chunks) for f in files], pa.int32()),
            }
        )
        self.con.register("new_files", records)
        self.con.execute("INSERT INTO files (root, path, sha256, size, mtime, title, n_chunks) SELECT * FROM new_files")
        self.con.unregister("new_files")
        self.changed = True

    def _language_of(self, new: NewFile) -> str:
        if self.settings.language != "auto":
            return self.settings.language
        if new.language:
            return new.language
        return detect(" ".join(c.text for c in new.chunks[:20])).language  # a caller that did not detect it

    def chunk_texts(self, batch: int = 1024):
        """(ids, texts) of every chunk in id order, ``batch`` at a time (the text the embedder read when indexing)."""
        for rows in _chunk_batches(self.con, "text", batch):
            yield [r[0] for r in rows], [r[1] for r in rows]

    @_disk_errors
    def replace_embeddings(self, ids: list[int], embeddings: np.ndarray) -> None:
        """Overwrite the stored vectors of existing chunks (re-embedding with another model of the same size)."""
        if embeddings.shape != (len(ids), self.settings.dim):
            raise SixfoldError(
                f"embedding shape {embeddings.shape} does not match {len(ids)} chunks of dimension {self.settings.dim}"
            )
        table = pa.table(
            {
                "chunk_id": pa.array(ids, pa.int64()),
                "embedding": pa.FixedSizeListArray.from_arrays(pa.array(embeddings.reshape(-1), pa.float32()), self.settings.dim),
            }
        )
        self.con.register("new_embeddings", table)
        self.con.execute("UPDATE chunks SET embedding = n.embedding FROM new_embeddings n WHERE chunks.chunk_id = n.chunk_id")
        self.con.unregister("new_embeddings")
        self.changed = True

    @_disk_errors
    def set_model(self, model: str, dim: int) -> None:
        """Record that every vector now comes from ``model`` and rebuild the vector index from DuckDB.

        Call after ``replace_embeddings`` has covered every chunk; the commit then swaps the whole
        generation (vectors, metadata, pointer) at once, so readers see the old model or the new, never a mix.
        """
        if dim != self.settings.dim:
            raise SixfoldError(f"model {model} gives {dim}-d vectors but the index holds {self.settings.dim}-d")
        self.settings.model = model
        self.con.execute("INSERT OR REPLACE INTO meta VALUES ('model', ?)", [model])
        self.vectors = _build_vectors(self.con, vec.index_kind(self.vectors), self.settings.dim)
        kind = vec.index_kind(self.vectors)  # a trained kind over too few vectors came back flat
        self.ivf_trained_on = int(self.vectors.ntotal) if kind in vec.TRAINED_KINDS else 0
        self.changed = True

    # ---- end -----------------------------------------------------------------------------------
    def _final_vectors(self) -> faiss.Index:
        n = int(self.vectors.ntotal)
        want = vec.resolve_type(self.settings.index_type, n)
        if want in vec.TRAINED_KINDS and n < vec.IVF_MIN_VECTORS:
            want = "flat"
        have = vec.index_kind(self.vectors)
        stale_ivf = have in vec.TRAINED_KINDS and n > 4 * max(self.ivf_trained_on, 1)
        if want == have and not stale_ivf and not (have == "hnsw" and self.removed_any):
            return self.vectors
        self.ivf_trained_on = n if want in vec.TRAINED_KINDS else 0
        return _build_vectors(self.con, want, self.settings.dim)

    def _rebuild_lexical(self) -> None:
        """A fresh tantivy index of the chunks now in DuckDB.

        Tantivy deletes a document by marking it: until its segment is merged, it still counts in the document
        frequencies and average length BM25 uses, so after deletions the scores (and the top 10) drift from those of
        a clean build of the same files. tantivy-py cannot force that merge; a rebuild from DuckDB is exact.
        """
        self.lexical.close()
        target = self.tmp / LEXICAL_DIR
        fresh = self.tmp / f"{LEXICAL_DIR}.new"
        _build_lexical(fresh, self.settings, self.con).close()
        shutil.rmtree(target)
        os.replace(fresh, target)
        self.lexical = _open_lexical(target, self.settings)

    @_disk_errors
    def commit(self) -> str:
        """Make the changes durable and visible; returns the new generation's name."""
        try:
            self.vectors = self._final_vectors()
            if self.vectors.ntotal != self.con.execute("SELECT count(*) FROM chunks").fetchall()[0][0]:
                raise SixfoldError("internal error: vector and chunk counts differ; nothing was committed")
            for key, value in (
                ("next_chunk_id", self.next_id),
                ("ivf_trained_on", self.ivf_trained_on),
                ("vector_index", vec.index_kind(self.vectors)),
                ("updated_at", time.strftime("%Y-%m-%dT%H:%M:%S")),
            ):
                self.con.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", [key, str(value)])
            self.con.execute("CHECKPOINT")
            faiss.write_index(self.vectors, str(self.tmp / FAISS_FILE))
            if self.lexical_deleted:
                self._rebuild_lexical()  # the pending adds and deletes are dropped: DuckDB has the result
            else:
                self.lexical.commit()
            self.con.close()
            self.lexical.close()
            _fsync_tree(self.tmp)
            final = self.store.root / self.name
            os.replace(self.tmp, final)
            pointer = {"format": FORMAT_VERSION, "generation": self.name, "model": self.settings.model, "dim": self.settings.dim}
            tmp_pointer = self.store.root / f"{POINTER}.tmp"
            with open(tmp_pointer, "w") as handle:
                json.dump(pointer, handle)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp_pointer, self.store.pointer_path)
            _fsync_dir(self.store.root)
            self._prune()
            return self.name
        except BaseException:
            self.abort()
            raise
        finally:
            self._release_lock()

    def _prune(self) -> None:
        """Keep the new generation and the one it was made from (readers may hold it); the rest go, now that a good
        generation is committed: older ones, and any newer ones that were not trusted (orphans, unreadable)."""
        keep = {self.name, self.previous}
        for old in self.store.generations():
            if old.name not in keep:
                shutil.rmtree(old, ignore_errors=True)

    def abort(self) -> None:
        con = getattr(self, "con", None)
        if con is not None:
            try:
                con.close()
            except Exception:
                pass
        lexical = getattr(self, "lexical", None)
        if lexical is not None:
            lexical.close()
        tmp = getattr(self, "tmp", None)
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
        try:
            (self.store.root / f"{POINTER}.tmp").unlink(missing_ok=True)
        except OSError:
            pass
        self._release_lock()
