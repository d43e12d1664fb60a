"""Embedding with sentence-transformers: model loading, device choice, batched encode.

Vectors are L2-normalised float32, so inner product in FAISS is cosine similarity. An index's queries must be
embedded by the model its vectors came from: ``load_index_embedder`` / ``index_embedder_model`` are the one place
that finds it (a packaged or local model by name, or a tuned ``embedder@N`` in the index's own ``models/`` folder).
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import numpy as np

from sixfold.core.device import choose_device
from sixfold.core.errors import SixfoldError
from sixfold.core.loading import load_model, quiet_loading
from sixfold.core.models import ResolvedModel, resolve_model, tuned_embedder_path


class TextEmbedder(Protocol):
    """What embeds texts for a caller: an ``Embedder``, or a stand-in for one (the server's ``TimedEmbedder``, which
    checks a request's deadline between batches)."""

    @property
    def name(self) -> str: ...

    @property
    def dim(self) -> int: ...

    def encode(self, texts: list[str], batch_size: int = 64) -> np.ndarray: ...


class Embedder:
    """A sentence-transformers model with the facts an index records about it."""

    def __init__(self, model: ResolvedModel, device: str | None = None) -> None:
        from sentence_transformers import SentenceTransformer

        self.name = model.name
        self.path = model.path
        self.device = device or choose_device()
        with quiet_loading("embedding model", model.name, "sentence_transformers"):
            # Half-precision checkpoints are read as float32 on a CPU, where fp16 matmuls are slow or missing.
            kwargs = {"model_kwargs": {"dtype": "float32"}} if self.device == "cpu" else {}
            self.model = SentenceTransformer(model.path, device=self.device, local_files_only=True, **kwargs)
        get_dim = getattr(self.model, "get_embedding_dimension", None) or self.model.get_sentence_embedding_dimension
        dim = get_dim()
        if not dim:
            raise SixfoldError(f"embedding model {model.name} does not report its vector size")
        self.dim = int(dim)
        self.max_tokens = int(self.model.max_seq_length or 512)
        self.tokenizer = self.model.tokenizer

    def token_counts(self, texts: list[str]) -> list[int]:
        """Tokens each text has for this model (with its special tokens), to tell when one is cut at ``max_tokens``."""
        return [len(ids) for ids in self.tokenizer(texts, add_special_tokens=True, truncation=False)["input_ids"]]

    def encode(self, texts: list[str], batch_size: int = 64) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        vectors = self.model.encode(
            texts,
            batch_size=batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.ascontiguousarray(vectors, dtype=np.float32)


def load_embedder(spec: str, device: str | None = None) -> Embedder:
    """Resolve and load an embedder once per process (models are large; reuse them)."""
    return load_model("embedder", spec, Embedder, device)


def index_embedder_model(index_root: str | Path) -> ResolvedModel:
    """The embedder an existing index's vectors come from, as the name the index records and the folder it is in.

    For whoever needs its own copies (the server's pool); everyone else calls ``load_index_embedder``."""
    from sixfold.indexer.store import IndexStore  # store is heavy (DuckDB, FAISS, tantivy); embedding is imported everywhere

    name = IndexStore(index_root).read_pointer()["model"]
    tuned = tuned_embedder_path(index_root, name)
    return ResolvedModel(name, tuned) if tuned else resolve_model(name, role="embedder")


def load_index_embedder(index_root: str | Path, device: str | None = None) -> Embedder:
    """The embedder of an existing index (see ``index_embedder_model``), loaded once per process."""
    return load_model("embedder", index_embedder_model(index_root), Embedder, device)
