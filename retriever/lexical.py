"""Lexical (BM25) search over the tantivy index of a snapshot."""

from __future__ import annotations

import numpy as np

from sixfold.indexer.store import Snapshot


def lexical_search(snapshot: Snapshot, query: str, k: int, allowed: np.ndarray | None = None) -> list[tuple[int, float]]:
    """Top-k (chunk_id, bm25) for the query's words, analysed in each language the index's chunks are in; ``allowed``
    restricts the ids."""
    return snapshot.lexical.search(query, k, None if allowed is None else allowed.tolist(), languages=snapshot.languages)
