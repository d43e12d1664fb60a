"""Dense (semantic) search over the FAISS index of a snapshot."""

from __future__ import annotations

import faiss
import numpy as np

from sixfold.indexer import vectors as vec
from sixfold.indexer.store import Snapshot


def dense_search(
    snapshot: Snapshot, query_vector: np.ndarray, k: int, allowed: np.ndarray | None = None
) -> list[tuple[int, float]]:
    """Top-k (chunk_id, cosine) for one normalised query vector; ``allowed`` restricts the ids."""
    index = snapshot.vectors
    if index.ntotal == 0 or k <= 0 or (allowed is not None and len(allowed) == 0):
        return []
    selector = faiss.IDSelectorBatch(np.asarray(allowed, dtype=np.int64)) if allowed is not None else None
    k = min(k, int(index.ntotal))
    params = vec.search_params(index, selector, k)
    query = np.ascontiguousarray(query_vector.reshape(1, -1), dtype=np.float32)
    if params is None:
        scores, ids = index.search(query, k)
    else:
        scores, ids = index.search(query, k, params=params)
    return [(int(i), float(s)) for i, s in zip(ids[0], scores[0]) if i >= 0]
