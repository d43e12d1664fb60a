"""Approximate vector indexes (IVF, HNSW, IVF-PQ): built on request, still find the right passage, survive deletions."""

from __future__ import annotations

import faiss
import pytest

from sixfold import Engine

QUERIES = [
    ("Who were the Normans descended from?", "history/normans.md"),
    ("What is the atomic number of oxygen?", "science/oxygen.html"),
    ("how does a steam engine turn heat into work", "science/steam_engine.txt"),
]


def assert_consistent(engine: Engine) -> None:
    snapshot = engine.snapshot()
    db_ids = {r[0] for r in snapshot.con.execute("SELECT chunk_id FROM chunks").fetchall()}
    vectors = snapshot.vectors
    assert vectors.ntotal == len(db_ids) == engine.status().chunks
    assert snapshot.lexical.count() == len(db_ids)
    if isinstance(vectors, faiss.IndexIDMap):
        assert set(faiss.vector_to_array(vectors.id_map).tolist()) == db_ids


@pytest.mark.parametrize("index_type", ["ivf", "hnsw", "ivfpq"])
def test_approximate_index_search_and_delete(corpus_copy, tmp_path, embedder, index_type):
    engine = Engine.open(tmp_path / "index")
    # small chunks make >= 100 vectors from the bundled corpus (IVF and IVF-PQ need 78+ to train, else they stay flat)
    report = engine.index(corpus_copy, index_type=index_type, chunk_tokens=32, overlap_tokens=0)
    assert report.chunks_added >= 100
    status = engine.status()
    assert status.index_type == index_type
    assert status.vector_index == index_type
    assert_consistent(engine)
    for query, expected in QUERIES:
        for mode in ("dense", "hybrid"):
            assert engine.search(query, k=3, mode=mode)[0].path == expected, (query, mode)
    filtered = engine.search("Who were the Normans descended from?", k=10, mode="dense", where="ext = 'pdf'")
    assert filtered and {h.path for h in filtered} == {"history/black_death.pdf"}

    (corpus_copy / "science" / "oxygen.html").unlink()
    report = engine.index(corpus_copy)
    assert report.removed == 1 and report.chunks_removed > 0
    status = engine.status()
    assert status.vector_index == index_type
    assert_consistent(engine)
    hits = engine.search("What is the atomic number of oxygen?", k=status.chunks, mode="dense")
    assert "science/oxygen.html" not in {h.path for h in hits}
    assert engine.search("Who were the Normans descended from?", k=1, mode="dense")[0].path == "history/normans.md"

    (corpus_copy / "zorblax.txt").write_text("The zorblax reactor converts marmalade into quantum flapdoodle.\n")
    assert engine.index(corpus_copy).added == 1
    assert_consistent(engine)
    assert engine.search("zorblax reactor marmalade", k=1, mode="dense")[0].path == "zorblax.txt"
    engine.close()


@pytest.mark.parametrize("index_type", ["ivf", "ivfpq"])
def test_ivf_falls_back_to_flat_for_few_vectors(corpus_copy, tmp_path, embedder, index_type):
    engine = Engine.open(tmp_path / "index")
    report = engine.index(corpus_copy, index_type=index_type)
    assert report.chunks_added < 78
    status = engine.status()
    assert status.index_type == index_type and status.vector_index == "flat"
    assert engine.search("Who were the Normans descended from?", k=1, mode="dense")[0].path == "history/normans.md"
    engine.close()


@pytest.mark.parametrize(("index_type", "built"), [("hnsw", "hnsw"), ("ivfpq", "flat")])  # ivfpq: too few chunks
def test_cli_index_type_option(corpus_copy, tmp_path, cli, embedder, index_type, built):
    rc, _out, err = cli("index", corpus_copy, "--index", tmp_path / "index", "--index-type", index_type, "--json")
    assert rc == 0, err
    rc, out, err = cli("status", "--index", tmp_path / "index", "--json")
    assert rc == 0, err
    assert f'"vector_index": "{built}"' in out and f'"index_type": "{index_type}"' in out


def test_hnsw_search_widens_its_beam_to_k():
    """An HNSW search for more results than efSearch still finds (nearly) the exact top k: faiss does not widen the
    beam by itself, so a k = 300 search with efSearch 96 would miss many of the true 300."""
    import numpy as np

    from sixfold.indexer import vectors as vec
    from sixfold.retriever.dense import dense_search

    rng = np.random.default_rng(0)
    data = rng.standard_normal((10_000, 128)).astype(np.float32)  # random, high-dimensional: hard for HNSW
    data /= np.linalg.norm(data, axis=1, keepdims=True)
    ids = np.arange(len(data), dtype=np.int64)
    hnsw = vec.build_index("hnsw", 128, ids, data)
    flat = vec.build_index("flat", 128, ids, data)
    k = 3 * vec.HNSW_EF_SEARCH
    assert vec.search_params(hnsw, None, k).efSearch == k

    class Snap:  # dense_search reads only .vectors
        def __init__(self, index):
            self.vectors = index

    recalls = []
    for query in data[:20]:
        exact = {i for i, _ in dense_search(Snap(flat), query, k)}
        found = {i for i, _ in dense_search(Snap(hnsw), query, k)}
        recalls.append(len(exact & found) / k)
    assert np.mean(recalls) > 0.95, np.mean(recalls)  # efSearch 96 for k = 288: 0.82
