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
Embeddings are kept in DuckDB as well, so the FAISS index can be rebuilt (type change, repair) without
re-embedding.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import duckdb
import faiss
import numpy as np
import pyarrow as pa

from indexer import vectors as vec
from indexer.chunking import Chunk
from indexer.errors import SixfoldError
from indexer.lexical import LexicalIndex

FORMAT_VERSION = 1
POINTER = "sixfold-index.json"
DB_FILE = "chunks.duckdb"
FAISS_FILE = "vectors.faiss"
LEXICAL_DIR = "lexical"
KEEP_GENERATIONS = 2  # the current one and the one before it, for readers still holding it


@dataclass
class IndexSettings:
    """What an index is built with; fixed at creation (the model and its dimension above all)."""

    model: str
    dim: int
    index_type: str = "auto"
    chunk_tokens: int = 200
    overlap_tokens: int = 40
    language: str = "en"


SCHEMA = """
CREATE TABLE meta (key VARCHAR PRIMARY KEY, value VARCHAR);
CREATE TABLE files (
    root VARCHAR, path VARCHAR, sha256 VARCHAR, size BIGINT, mtime DOUBLE, title VARCHAR,
    n_chunks INTEGER, indexed_at TIMESTAMP DEFAULT current_timestamp, PRIMARY KEY (root, path));
CREATE TABLE chunks (
    chunk_id BIGINT PRIMARY KEY, root VARCHAR, path VARCHAR, ext VARCHAR, chunk_index INTEGER,
    title VARCHAR, heading VARCHAR, page INTEGER, start_char INTEGER, end_char INTEGER, text VARCHAR,
    embedding FLOAT[{dim}]);
CREATE VIEW chunk_meta AS
    SELECT c.chunk_id, c.root, c.path, c.ext, c.chunk_index, c.title, c.heading, c.page, c.start_char,
           c.end_char, c.text, f.sha256, f.size, f.mtime, f.indexed_at
    FROM chunks c JOIN files f USING (root, path);
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


class IndexStore:
    """An index directory on disk (it may not exist yet)."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).expanduser().resolve()

    @property
    def pointer_path(self) -> Path:
        return self.root / POINTER

    def exists(self) -> bool:
        return self.pointer_path.is_file()

    def check_usable_for_new(self) -> None:
        """Refuse to create an index in a folder that holds other things."""
        if self.root.exists() and not self.root.is_dir():
            raise SixfoldError(f"index path {self.root} is a file, not a folder")
        if self.root.is_dir() and not self.exists():
            others = [p.name for p in self.root.iterdir() if p.name not in (".lock",) and not p.name.startswith("gen-")]
            if others:
                raise SixfoldError(f"{self.root} is not a sixfold index and is not empty; choose another --index folder")

    def read_pointer(self) -> dict:
        if not self.root.exists():
            raise SixfoldError(f"no index at {self.root} (create one with: sixfold index FOLDER --index {self.root})")
        if not self.exists():
            raise SixfoldError(f"{self.root} is not a sixfold index (no {POINTER})")
        try:
            pointer = json.loads(self.pointer_path.read_text())
            generation = pointer["generation"]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise SixfoldError(f"index at {self.root} is corrupt: unreadable {POINTER} ({exc})") from None
        if pointer.get("format") != FORMAT_VERSION:
            raise SixfoldError(f"index at {self.root} has format {pointer.get('format')}; this sixfold reads {FORMAT_VERSION}")
        if not (self.root / generation).is_dir():
            raise SixfoldError(f"index at {self.root} is corrupt: generation {generation} is missing")
        return pointer

    def open(self) -> Snapshot:
        pointer = self.read_pointer()
        return Snapshot(self.root / pointer["generation"])

    def begin(self, settings: IndexSettings | None = None) -> Transaction:
        """Start a write. ``settings`` are needed only when the index does not exist yet."""
        return Transaction(self, settings)

    def size_on_disk(self) -> int:
        return _dir_size(self.root) if self.root.exists() else 0


def _read_settings(con: duckdb.DuckDBPyConnection) -> tuple[IndexSettings, dict[str, str]]:
    meta = dict(con.execute("SELECT key, value FROM meta").fetchall())
    settings = IndexSettings(
        model=meta["model"],
        dim=int(meta["dim"]),
        index_type=meta["index_type"],
        chunk_tokens=int(meta["chunk_tokens"]),
        overlap_tokens=int(meta["overlap_tokens"]),
        language=meta["language"],
    )
    return settings, meta


class Snapshot:
    """A read-only view of one committed generation."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        try:
            self.con = duckdb.connect(str(folder / DB_FILE), read_only=True)
            self.settings, self.meta = _read_settings(self.con)
        except (duckdb.Error, KeyError, ValueError) as exc:
            raise SixfoldError(f"index at {folder.parent} is corrupt: cannot read {DB_FILE} ({exc})") from None
        self._vectors: faiss.Index | None = None
        self._lexical: LexicalIndex | None = None

    @property
    def vectors(self) -> faiss.Index:
        if self._vectors is None:
            try:
                index = faiss.read_index(str(self.folder / FAISS_FILE))
            except RuntimeError as exc:
                first = str(exc).strip().splitlines()[0] if str(exc).strip() else "unreadable"
                raise SixfoldError(f"index at {self.folder.parent} is corrupt: cannot read {FAISS_FILE} ({first})") from None
            if index.d != self.settings.dim:
                raise SixfoldError(
                    f"index at {self.folder.parent} is corrupt: vectors have dimension {index.d}, "
                    f"metadata says {self.settings.dim}"
                )
            if index.ntotal != self.count_chunks():
                raise SixfoldError(
                    f"index at {self.folder.parent} is corrupt: {index.ntotal} vectors for {self.count_chunks()} chunks"
                )
            self._vectors = vec.to_gpu_if_available(index)
        return self._vectors

    @property
    def lexical(self) -> LexicalIndex:
        if self._lexical is None:
            self._lexical = LexicalIndex(self.folder / LEXICAL_DIR, self.settings.language)
        return self._lexical

    def count_chunks(self) -> int:
        return int(self.con.execute("SELECT count(*) FROM chunks").fetchone()[0])

    def count_files(self) -> int:
        return int(self.con.execute("SELECT count(*) FROM files").fetchone()[0])

    def chunks(self, ids: list[int]) -> dict[int, dict]:
        """Chunk rows (without embeddings) by id."""
        if not ids:
            return {}
        rel = self.con.execute(
            "SELECT chunk_id, root, path, ext, chunk_index, title, heading, page, start_char, end_char, text "
            "FROM chunks WHERE chunk_id IN (SELECT unnest($ids))",
            {"ids": [int(i) for i in ids]},
        )
        names = [d[0] for d in rel.description]
        return {row[0]: dict(zip(names, row)) for row in rel.fetchall()}

    def filter_ids(self, where: str) -> np.ndarray:
        """Chunk ids whose metadata satisfies a SQL WHERE clause over the ``chunk_meta`` view."""
        if ";" in where:
            raise SixfoldError("--where takes one SQL condition, without ';'")
        try:
            rows = self.con.execute(f"SELECT chunk_id FROM chunk_meta WHERE {where}").fetchnumpy()
        except duckdb.Error as exc:
            first = str(exc).strip().splitlines()[0]
            raise SixfoldError(f"bad --where condition: {first}") from None
        return rows["chunk_id"].astype(np.int64)

    def embeddings(self, ids: list[int] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(ids, vectors) straight from DuckDB, for rebuilding or exact re-scoring."""
        return _load_embeddings(self.con, self.settings.dim, ids)

    def files(self) -> list[dict]:
        rel = self.con.execute("SELECT root, path, sha256, size, n_chunks, title, indexed_at FROM files ORDER BY root, path")
        names = [d[0] for d in rel.description]
        return [dict(zip(names, row)) for row in rel.fetchall()]

    def close(self) -> None:
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
    chunk_ids = table.column("chunk_id").to_numpy().astype(np.int64)
    emb = table.column("embedding").combine_chunks()
    flat = emb.values.to_numpy(zero_copy_only=False) if len(emb) else np.zeros(0, np.float32)
    return chunk_ids, np.ascontiguousarray(flat.reshape(-1, dim), dtype=np.float32)


class Transaction:
    """One write to an index: copy the current generation, change the copy, then commit or abort."""

    def __init__(self, store: IndexStore, settings: IndexSettings | None) -> None:
        self.store = store
        self._lock_handle = self._acquire_lock()
        try:
            self._open(settings)
        except BaseException:
            self._release_lock()
            raise

    def _acquire_lock(self):
        self.store.root.mkdir(parents=True, exist_ok=True)
        handle = open(self.store.root / ".lock", "a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            raise SixfoldError(
                f"another sixfold process is writing the index at {self.store.root}; try again when it ends"
            ) from None
        return handle

    def _release_lock(self) -> None:
        if self._lock_handle is not None:
            fcntl.flock(self._lock_handle, fcntl.LOCK_UN)
            self._lock_handle.close()
            self._lock_handle = None

    def _open(self, settings: IndexSettings | None) -> None:
        root = self.store.root
        for stale in root.glob("gen-*.tmp"):  # left by a run that was killed
            shutil.rmtree(stale, ignore_errors=True)
        previous = self.store.read_pointer()["generation"] if self.store.exists() else None
        for orphan in root.glob("gen-*"):  # renamed into place by a run killed before it swapped the pointer
            if orphan.is_dir() and not orphan.name.endswith(".tmp") and (previous is None or orphan.name > previous):
                shutil.rmtree(orphan, ignore_errors=True)
        number = int(previous.split("-")[1]) + 1 if previous else 1
        self.name = f"gen-{number:06d}"
        self.tmp = root / f"{self.name}.tmp"
        self.tmp.mkdir()
        self.removed_any = False
        self.changed = False
        if previous:
            prev = root / previous
            shutil.copy2(prev / DB_FILE, self.tmp / DB_FILE)
            shutil.copytree(prev / LEXICAL_DIR, self.tmp / LEXICAL_DIR)
            try:
                self.con = duckdb.connect(str(self.tmp / DB_FILE))
                self.settings, meta = _read_settings(self.con)
            except (duckdb.Error, KeyError, ValueError) as exc:
                raise SixfoldError(f"index at {root} is corrupt: cannot read {DB_FILE} ({exc})") from None
            try:
                self.vectors = faiss.read_index(str(prev / FAISS_FILE))
            except RuntimeError:
                # The vectors file is damaged but DuckDB holds every embedding: rebuild from it.
                ids, vectors = _load_embeddings(self.con, self.settings.dim, None)
                self.vectors = vec.build_index(
                    vec.resolve_type(self.settings.index_type, len(ids)), self.settings.dim, ids, vectors
                )
                self.changed = True  # the repair itself is worth committing
            self.next_id = int(meta.get("next_chunk_id", "0"))
            self.ivf_trained_on = int(meta.get("ivf_trained_on", "0"))
            self.lexical = LexicalIndex(self.tmp / LEXICAL_DIR, self.settings.language)
        else:
            if settings is None:
                raise SixfoldError(f"no index at {root}")
            self.settings = settings
            vec.resolve_type(settings.index_type, 0)  # validates the name
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
            self.lexical = LexicalIndex(self.tmp / LEXICAL_DIR, settings.language, create=True)

    # ---- reads -------------------------------------------------------------------------------
    def file_records(self) -> dict[tuple[str, str], tuple[str, int]]:
        """(root, path) -> (sha256, n_chunks) for every indexed file."""
        rows = self.con.execute("SELECT root, path, sha256, n_chunks FROM files").fetchall()
        return {(r, p): (h, n) for r, p, h, n in rows}

    # ---- changes -----------------------------------------------------------------------------
    def remove_file(self, root: str, path: str) -> int:
        ids = [r[0] for r in self.con.execute("SELECT chunk_id FROM chunks WHERE root = ? AND path = ?", [root, path]).fetchall()]
        if ids:
            id_array = np.asarray(ids, dtype=np.int64)
            if vec.index_kind(self.vectors) == "hnsw":
                self.removed_any = True  # HNSW cannot remove: rebuilt from DuckDB at commit
            else:
                self.vectors.remove_ids(id_array)
            self.lexical.delete(ids)
            self.con.execute("DELETE FROM chunks WHERE root = ? AND path = ?", [root, path])
        self.con.execute("DELETE FROM files WHERE root = ? AND path = ?", [root, path])
        self.changed = True
        return len(ids)

    def rename_file(self, root: str, old: str, new: str) -> None:
        """Same content under a new name: move the rows, keep the vectors."""
        ext = Path(new).suffix.lower().lstrip(".")
        self.con.execute(
            "UPDATE files SET path = ?, indexed_at = current_timestamp WHERE root = ? AND path = ?", [new, root, old]
        )
        self.con.execute("UPDATE chunks SET path = ?, ext = ? WHERE root = ? AND path = ?", [new, ext, root, old])
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
    ) -> None:
        if embeddings.shape != (len(chunks), self.settings.dim):
            raise SixfoldError(
                f"embedding shape {embeddings.shape} does not match {len(chunks)} chunks of dimension {self.settings.dim}"
            )
        ids = list(range(self.next_id, self.next_id + len(chunks)))
        self.next_id += len(chunks)
        ext = Path(path).suffix.lower().lstrip(".")
        if chunks:
            dim = self.settings.dim
            table = pa.table(
                {
                    "chunk_id": pa.array(ids, pa.int64()),
                    "root": [root] * len(chunks),
                    "path": [path] * len(chunks),
                    "ext": [ext] * len(chunks),
                    "chunk_index": pa.array(range(len(chunks)), pa.int32()),
                    "title": [title] * len(chunks),
                    "heading": [c.heading for c in chunks],
                    "page": pa.array([c.page for c in chunks], pa.int32()),
                    "start_char": pa.array([c.start_char for c in chunks], pa.int32()),
                    "end_char": pa.array([c.end_char for c in chunks], pa.int32()),
                    "text": [c.text for c in chunks],
                    "embedding": pa.FixedSizeListArray.from_arrays(pa.array(embeddings.reshape(-1), pa.float32()), dim),
                }
            )
            self.con.register("new_chunks", table)
            self.con.execute("INSERT INTO chunks SELECT * FROM new_chunks")
            self.con.unregister("new_chunks")
            self.vectors.add_with_ids(embeddings, np.asarray(ids, dtype=np.int64))
            self.lexical.add(
                ids, [c.text if not c.heading or c.text.startswith(c.heading) else f"{c.heading}\n{c.text}" for c in chunks]
            )
        self.con.execute(
            "INSERT INTO files (root, path, sha256, size, mtime, title, n_chunks) VALUES (?, ?, ?, ?, ?, ?, ?)",
            [root, path, sha256, size, mtime, title, len(chunks)],
        )
        self.changed = True

    def chunk_texts(self, batch: int = 1024):
        """(ids, texts) of every chunk in id order, ``batch`` at a time (the text the embedder read when indexing)."""
        last = -1
        while True:
            rows = self.con.execute(
                "SELECT chunk_id, text FROM chunks WHERE chunk_id > ? ORDER BY chunk_id LIMIT ?", [last, batch]
            ).fetchall()
            if not rows:
                return
            last = rows[-1][0]
            yield [r[0] for r in rows], [r[1] for r in rows]

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

    def set_model(self, model: str, dim: int) -> None:
        """Record that every vector now comes from ``model`` and rebuild the vector index from DuckDB.

        Call after ``replace_embeddings`` has covered every chunk; the commit then swaps the whole
        generation (vectors, metadata, pointer) at once, so readers see the old model or the new, never a mix.
        """
        if dim != self.settings.dim:
            raise SixfoldError(f"model {model} gives {dim}-d vectors but the index holds {self.settings.dim}-d")
        self.settings.model = model
        self.con.execute("INSERT OR REPLACE INTO meta VALUES ('model', ?)", [model])
        ids, vectors = _load_embeddings(self.con, self.settings.dim, None)
        kind = vec.index_kind(self.vectors)
        if kind == "ivf" and len(ids) < 2 * 39:
            kind = "flat"
        self.vectors = vec.build_index(kind, self.settings.dim, ids, vectors)
        self.ivf_trained_on = len(ids) if kind == "ivf" else 0
        self.changed = True

    # ---- end -----------------------------------------------------------------------------------
    def _final_vectors(self) -> faiss.Index:
        n = int(self.vectors.ntotal)
        want = vec.resolve_type(self.settings.index_type, n)
        if want == "ivf" and n < 2 * 39:
            want = "flat"
        have = vec.index_kind(self.vectors)
        stale_ivf = have == "ivf" and n > 4 * max(self.ivf_trained_on, 1)
        if want == have and not stale_ivf and not (have == "hnsw" and self.removed_any):
            return self.vectors
        ids, vectors = _load_embeddings(self.con, self.settings.dim, None)
        self.ivf_trained_on = len(ids) if want == "ivf" else 0
        return vec.build_index(want, self.settings.dim, ids, vectors)

    def commit(self) -> str:
        """Make the changes durable and visible; returns the new generation's name."""
        try:
            self.vectors = self._final_vectors()
            if self.vectors.ntotal != self.con.execute("SELECT count(*) FROM chunks").fetchone()[0]:
                raise SixfoldError("internal error: vector and chunk counts differ; nothing was committed")
            for key, value in (
                ("next_chunk_id", self.next_id),
                ("ivf_trained_on", self.ivf_trained_on),
                ("vector_index", vec.index_kind(self.vectors)),
                ("updated_at", time.strftime("%Y-%m-%dT%H:%M:%S")),
            ):
                self.con.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", [key, str(value)])
            self.con.execute("CHECKPOINT")
            self.con.close()
            faiss.write_index(self.vectors, str(self.tmp / FAISS_FILE))
            self.lexical.commit()
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
        generations = sorted(p for p in self.store.root.glob("gen-*") if p.is_dir() and not p.name.endswith(".tmp"))
        for old in generations[:-KEEP_GENERATIONS]:
            shutil.rmtree(old, ignore_errors=True)

    def abort(self) -> None:
        try:
            self.con.close()
        except Exception:
            pass
        shutil.rmtree(self.tmp, ignore_errors=True)
        self._release_lock()
