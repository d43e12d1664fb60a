"""retriever.search over a small index with random vectors: dense / bm25 / hybrid, --where filters, query checks."""

from __future__ import annotations

import numpy as np
import pytest

from sixfold.core.errors import SixfoldError
from sixfold.retriever.filters import allowed_ids
from sixfold.retriever.search import DENSE_WEIGHT, MAX_K, default_mode, search, validate_query
from sixfold.retriever.types import Hit


@pytest.fixture
def snapshot(small_index):
    snap = small_index.store.open()
    yield snap
    snap.close()


def test_dense_ranks_the_chunk_whose_vector_is_the_query_first(snapshot, small_index):
    query = small_index.vectors["papers/oxygen.html"][0]
    hits = search(snapshot, "anything", query, k=3, mode="dense")
    assert [h.rank for h in hits] == [1, 2, 3]
    assert (hits[0].chunk_id, hits[0].path) == (3, "papers/oxygen.html")
    assert hits[0].score == pytest.approx(1.0, abs=1e-5)
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    assert set(hits[0].scores) == {"dense"}


def test_dense_scores_are_the_cosines_of_the_stored_vectors(snapshot, small_index):
    query = small_index.vectors["notes/steam.md"][1]
    ids, vectors = snapshot.embeddings()
    expected = dict(zip(ids.tolist(), (vectors @ query).tolist()))
    for hit in search(snapshot, "q", query, k=6, mode="dense"):
        assert hit.score == pytest.approx(expected[hit.chunk_id], abs=1e-5)


def test_bm25_needs_no_vector_and_finds_the_words(snapshot):
    hits = search(snapshot, "Normans Normandy", None, k=5, mode="bm25")
    assert hits[0].path == "notes/normans.txt" and hits[0].text.startswith("The Normans")
    assert hits[0].scores["bm25"] == hits[0].score > 0
    assert search(snapshot, "zeppelin", None, k=5, mode="bm25") == []


def test_hybrid_fuses_both_rankings(snapshot, small_index):
    # The query's vector is chunk 0's, its words are only in chunk 4: the fused score of each chunk is the weighted
    # sum of its dense z-score and BM25's (1 for BM25's one hit, 0 for the chunks it did not find).
    vector = small_index.vectors["notes/steam.md"][0]
    hits = search(snapshot, "Amazon rainforest Brazil", vector, k=6, mode="hybrid")
    dense = search(snapshot, "q", vector, k=6, mode="dense")
    cosines = np.array([h.score for h in dense])
    z = dict(zip((h.chunk_id for h in dense), (cosines - cosines.mean()) / cosines.std()))
    expected = {cid: DENSE_WEIGHT * zd + (1 - DENSE_WEIGHT) * (1.0 if cid == 4 else 0.0) for cid, zd in z.items()}
    assert [h.chunk_id for h in hits] == sorted(expected, key=lambda cid: (-expected[cid], cid))
    for hit in hits:
        assert hit.scores["fused"] == pytest.approx(hit.score) == pytest.approx(expected[hit.chunk_id])
    assert set(hits[0].scores) == {"dense", "fused"} and set(next(h for h in hits if h.chunk_id == 4).scores) == {
        "dense", "bm25", "fused"}  # fmt: skip
    # BM25's match lifts chunk 4 above where the vectors alone put it
    assert [h.chunk_id for h in hits].index(4) < [h.chunk_id for h in dense].index(4)


def test_k_bounds_the_hits_and_a_large_k_returns_every_chunk(snapshot, small_index):
    query = small_index.vectors["notes/steam.md"][0]
    assert len(search(snapshot, "q", query, k=2, mode="dense")) == 2
    assert sorted(h.chunk_id for h in search(snapshot, "q", query, k=50, mode="dense")) == [0, 1, 2, 3, 4, 5]


def test_a_vector_mode_without_a_vector_and_an_unknown_mode_are_errors(snapshot):
    with pytest.raises(SixfoldError, match="needs the query's vector"):
        search(snapshot, "q", None, mode="hybrid")
    with pytest.raises(SixfoldError, match="unknown search mode 'fuzzy'"):
        search(snapshot, "q", None, mode="fuzzy")


@pytest.mark.parametrize("mode", ["dense", "bm25", "hybrid"])
def test_where_restricts_every_mode(snapshot, small_index, mode):
    query = small_index.vectors["notes/steam.md"][0]
    hits = search(snapshot, "steam water Normans", query, k=10, mode=mode, where="ext = 'txt'")
    assert hits and {h.path for h in hits} == {"notes/normans.txt"}
    assert search(snapshot, "steam", query, k=10, mode=mode, where="path LIKE 'nowhere/%'") == []


def test_where_sees_file_metadata(snapshot):
    assert sorted(allowed_ids(snapshot, "path LIKE 'papers/%'").tolist()) == [3, 4, 5]
    assert sorted(allowed_ids(snapshot, "chunk_index = 1").tolist()) == [1, 5]
    assert sorted(allowed_ids(snapshot, "sha256 = 'sha-notes/steam.md'").tolist()) == [0, 1]
    assert allowed_ids(snapshot, None) is None and allowed_ids(snapshot, "   ") is None


@pytest.mark.parametrize(
    ("where", "message"),
    [
        ("ext = ", "bad --where condition"),
        ("no_such_column = 1", "bad --where condition"),
        ("1=1; DROP TABLE chunks", "without ';'"),
    ],
)
def test_a_bad_where_is_one_clear_error(snapshot, where, message):
    with pytest.raises(SixfoldError, match=message) as info:
        search(snapshot, "steam", None, mode="bm25", where=where)
    assert "\n" not in str(info.value)
    assert snapshot.count_chunks() == 6  # and nothing was changed


def test_validate_query():
    assert validate_query("  steam engine ", 3) == "steam engine"
    for query, k, message in [("   ", 3, "empty query"), ("q", 0, "positive"), ("q", MAX_K + 1, f"at most {MAX_K}")]:
        with pytest.raises(SixfoldError, match=message):
            validate_query(query, k)


def test_default_mode_is_bm25_only_for_a_language_the_embedder_does_not_read():
    assert default_mode("en", ("en",)) == "hybrid"
    assert default_mode("es", ("en",)) == "bm25"
    assert default_mode("none", ("en",)) == "hybrid"
    assert default_mode("es", None) == "hybrid"  # a model whose languages are not known


def test_hits_carry_their_place_and_serialise(snapshot, small_index):
    hit = search(snapshot, "q", small_index.vectors["notes/steam.md"][1], k=1, mode="dense")[0]
    assert (hit.chunk_id, hit.root, hit.heading, hit.page) == (1, "/docs", None, None)
    assert hit.location == f"chars {hit.start_char}-{hit.end_char}"
    data = hit.to_dict()
    assert data["location"] == hit.location and data["scores"] == hit.scores and data["text"] == hit.text
    paged = Hit(1, 0.5, 7, "a.pdf", "/r", "t", heading="Intro", page=3, start_char=0, end_char=1)
    assert paged.location == "p.3, § Intro, chars 0-1"


def test_a_query_vector_of_another_dtype_and_shape_is_accepted(snapshot, small_index):
    query = small_index.vectors["papers/amazon.pdf"][1].astype(np.float64).reshape(1, -1)
    assert search(snapshot, "q", query, k=1, mode="dense")[0].chunk_id == 5
