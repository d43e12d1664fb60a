"""Small indexes for the model-free layer: their vectors are random (dimension 8), not embedded."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sixfold.indexer.chunking import Chunk
from sixfold.indexer.store import IndexSettings, IndexStore, Transaction

DIM = 8
ROOT = "/docs"  # the folder the files were "indexed from" (only recorded, never read)


def unit_vectors(n: int, seed: int) -> np.ndarray:
    """``n`` random float32 vectors of length 1 (what the embedder would give: cosine = inner product)."""
    vectors = np.random.default_rng(seed).standard_normal((n, DIM)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def chunks_of(texts: list[str], heading: str | None = None, page: int | None = None) -> list[Chunk]:
    """Chunks laid end to end as a loader and the chunker would place them (offsets into the joined text)."""
    out, position = [], 0
    for text in texts:
        out.append(Chunk(text, page, heading, position, position + len(text)))
        position += len(text) + 2
    return out


def add(txn: Transaction, path: str, texts: list[str], vectors: np.ndarray | None = None, seed: int = 0, **kw) -> np.ndarray:
    """Add ``path`` with one chunk per text; returns the vectors stored for it."""
    vectors = unit_vectors(len(texts), seed) if vectors is None else vectors
    txn.add_file(
        ROOT, path, sha256=f"sha-{path}", size=sum(map(len, texts)), mtime=0.0, title=kw.get("title"),
        chunks=chunks_of(texts, kw.get("heading"), kw.get("page")), embeddings=vectors,
    )  # fmt: skip
    return vectors


def settings(**kw) -> IndexSettings:
    return IndexSettings(model="random-vectors", dim=DIM, **kw)


@dataclass
class SmallIndex:
    """A committed index of four files; ``vectors[path]`` is what each file's chunks were stored with."""

    store: IndexStore
    vectors: dict[str, np.ndarray]


FILES = {
    "notes/steam.md": ["The steam engine turns heat into work with a piston.", "Boilers make steam from water."],
    "notes/normans.txt": ["The Normans descended from Norse raiders of Normandy."],
    "papers/oxygen.html": ["Oxygen has the atomic number eight and is a chalcogen."],
    "papers/amazon.pdf": ["Most of the Amazon rainforest lies in Brazil.", "The river carries much fresh water."],
}
