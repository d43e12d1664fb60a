"""Metadata filters: a SQL WHERE condition over the chunk_meta view, evaluated by DuckDB."""

from __future__ import annotations

import numpy as np

from sixfold.indexer.store import Snapshot


def allowed_ids(snapshot: Snapshot, where: str | None) -> np.ndarray | None:
    """Ids that pass ``where``, or None when there is no filter."""
    if where is None or not where.strip():
        return None
    return snapshot.filter_ids(where)
