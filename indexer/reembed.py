"""Re-embed every chunk of an index with another model of the same dimension, as one atomic generation.

Used when a tuned embedder becomes active (or is rolled back): the chunk text, files and BM25 index stay as
they are; the vectors and the model the index records are replaced together. The work happens in a new
generation folder and the pointer is swapped only at the end, so a run that fails or is killed part-way leaves
the previous generation (old model, old vectors) current and readable.
"""

from __future__ import annotations

from collections.abc import Callable

from sixfold.indexer.embedding import Embedder
from sixfold.indexer.store import IndexStore

BATCH = 512


def reembed_index(
    store: IndexStore,
    embedder: Embedder,
    on_progress: Callable[[int, int], None] | None = None,
    batch_size: int = 64,
) -> str:
    """Replace all vectors with ``embedder``'s and record its name; returns the new generation's name."""
    txn = store.begin()
    try:
        total = int(txn.con.execute("SELECT count(*) FROM chunks").fetchall()[0][0])
        done = 0
        if on_progress:
            on_progress(done, total)
        for ids, texts in txn.chunk_texts(BATCH):
            txn.replace_embeddings(ids, embedder.encode(texts, batch_size=batch_size))
            done += len(ids)
            if on_progress:
                on_progress(done, total)
        txn.set_model(embedder.name, embedder.dim)
    except BaseException:
        txn.abort()
        raise
    return txn.commit()
