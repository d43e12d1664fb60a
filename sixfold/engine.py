"""The Engine: one object that composes indexer, retriever (and later reader, tuner) over an index folder."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from indexer.embedding import Embedder, load_embedder
from indexer.errors import SixfoldError
from indexer.models import DEFAULT_EMBEDDER, resolve_model
from indexer.pipeline import IndexReport, Progress, index_folder
from indexer.store import IndexSettings, IndexStore, Snapshot
from retriever.rerank import load_reranker
from retriever.search import search as run_search
from retriever.types import Hit

MAX_EMBED_TEXTS = 100_000


@dataclass
class IndexStatus:
    path: str
    documents: int
    chunks: int
    model: str
    dimension: int
    index_type: str
    vector_index: str
    language: str
    chunk_tokens: int
    overlap_tokens: int
    generation: str
    created_at: str | None
    updated_at: str | None
    size_bytes: int

    def to_dict(self) -> dict:
        return asdict(self)


class Engine:
    """sixfold over one index folder. ``Engine.open("./idx")`` then ``index``, ``search``, ``embed``, ``status``."""

    def __init__(self, path: str | os.PathLike, model: str | None = None) -> None:
        self.store = IndexStore(path)
        self.requested_model = model
        self._snapshot: Snapshot | None = None
        self._generation: str | None = None

    @classmethod
    def open(cls, path: str | os.PathLike, model: str | None = None) -> Engine:
        """Open an index folder (it need not exist yet: ``index`` creates it)."""
        return cls(path, model)

    # ---- models ----------------------------------------------------------------------------
    def _model_name(self) -> str:
        """The index's own model; a different ``model`` given by the user is refused."""
        if not self.store.exists():
            return self.requested_model or DEFAULT_EMBEDDER
        recorded = self.store.read_pointer()["model"]
        if self.requested_model and resolve_model(self.requested_model).name != recorded:
            raise SixfoldError(
                f"this index was built with the model {recorded}; it cannot be queried with {self.requested_model} "
                "(omit --model, or build a new index with it)"
            )
        return recorded

    @property
    def embedder(self) -> Embedder:
        return load_embedder(self._model_name())

    # ---- index -----------------------------------------------------------------------------
    def index(
        self,
        folder: str | os.PathLike,
        progress: Progress | None = None,
        *,
        index_type: str | None = None,
        chunk_tokens: int | None = None,
        overlap_tokens: int | None = None,
        language: str | None = None,
        batch_size: int = 64,
    ) -> IndexReport:
        """Index (or re-index incrementally) a folder of documents."""
        if not Path(folder).expanduser().is_dir():
            raise SixfoldError(
                f"folder {folder} does not exist" if not Path(folder).expanduser().exists() else f"{folder} is not a folder"
            )
        settings = None
        if not self.store.exists():
            self.store.check_usable_for_new()
        embedder = self.embedder
        if not self.store.exists():
            settings = IndexSettings(
                model=embedder.name,
                dim=embedder.dim,
                index_type=index_type or "auto",
                chunk_tokens=min(chunk_tokens or 200, embedder.max_tokens - 2),
                overlap_tokens=overlap_tokens if overlap_tokens is not None else 40,
                language=language or "en",
            )
        report = index_folder(self.store, folder, embedder, settings, progress, batch_size=batch_size)
        self.close()  # the next read opens the new generation
        return report

    # ---- read ------------------------------------------------------------------------------
    def snapshot(self) -> Snapshot:
        """The current generation, reopened when a writer has committed a newer one."""
        generation = self.store.read_pointer()["generation"]
        if self._snapshot is None or generation != self._generation:
            if self._snapshot is not None:
                self._snapshot.close()
            self._snapshot = self.store.open()
            self._generation = generation
        return self._snapshot

    def search(
        self,
        query: str,
        k: int = 10,
        *,
        mode: str = "hybrid",
        where: str | None = None,
        rerank: str | None = None,
        candidates: int = 100,
        rerank_depth: int = 50,
    ) -> list[Hit]:
        """Ranked passages for ``query``. ``rerank`` names a cross-encoder (local folder or hub id)."""
        snapshot = self.snapshot()
        reranker = load_reranker(rerank) if rerank else None
        return run_search(snapshot, self.embedder, query, k, mode, where, reranker, candidates, rerank_depth)

    def embed(self, texts: list[str] | str, batch_size: int = 64) -> np.ndarray:
        """Embeddings with the index's model (or the default one when there is no index yet)."""
        if isinstance(texts, str):
            texts = [texts]
        if not texts:
            raise SixfoldError("no text to embed")
        if len(texts) > MAX_EMBED_TEXTS:
            raise SixfoldError(f"at most {MAX_EMBED_TEXTS} texts per call, got {len(texts)}")
        for number, text in enumerate(texts, start=1):
            if not isinstance(text, str) or not text.strip():
                raise SixfoldError(f"text {number} is empty")
        return self.embedder.encode(list(texts), batch_size=batch_size)

    def status(self) -> IndexStatus:
        snapshot = self.snapshot()
        s = snapshot.settings
        return IndexStatus(
            path=str(self.store.root),
            documents=snapshot.count_files(),
            chunks=snapshot.count_chunks(),
            model=s.model,
            dimension=s.dim,
            index_type=s.index_type,
            vector_index=snapshot.meta.get("vector_index", "flat"),
            language=s.language,
            chunk_tokens=s.chunk_tokens,
            overlap_tokens=s.overlap_tokens,
            generation=self._generation or "",
            created_at=snapshot.meta.get("created_at"),
            updated_at=snapshot.meta.get("updated_at"),
            size_bytes=self.store.size_on_disk(),
        )

    def close(self) -> None:
        if self._snapshot is not None:
            self._snapshot.close()
            self._snapshot = None
