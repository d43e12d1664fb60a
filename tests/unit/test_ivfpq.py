"""The compressed ivfpq index (indexer/vectors.py) on random vectors: sizes, search, removal by hand, selector, files."""

from __future__ import annotations

import faiss
import numpy as np
import pytest

from sixfold.indexer import vectors as vec


def unit(n: int, dim: int, seed: int) -> np.ndarray:
    x = np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def top1(index: faiss.Index, queries: np.ndarray, selector: faiss.IDSelector | None = None) -> np.ndarray:
    return index.search(queries, 1, params=vec.search_params(index, selector, 1))[1][:, 0]


def test_sizes():
    assert vec.pq_subquantizers(384) == 48 and vec.pq_subquantizers(512) == 64 and vec.pq_subquantizers(100) == 10
    assert vec.pq_subquantizers(7) == 1
    assert vec.pq_bits(100_000) == 8 and vec.pq_bits(150) == 5 and vec.pq_bits(1) == 1
    assert vec.ivfpq_nlist(10_000_000) == 3162 and vec.ivfpq_nlist(100) == 2
    assert vec.ivfpq_nprobe(3162) == 32 and vec.ivfpq_nprobe(10) == 10
    assert vec.resolve_type("ivfpq", 10) == "ivfpq" and vec.resolve_type("auto", 10**8) == "ivf"


@pytest.mark.parametrize("n", [80, 3000])
def test_build_search_and_file_round_trip(tmp_path, n):
    data = unit(n, 64, seed=1)
    ids = np.arange(n, dtype=np.int64) * 7 + 5
    index = vec.build_index("ivfpq", 64, ids, data)
    assert vec.index_kind(index) == "ivfpq" and index.ntotal == n
    assert (top1(index, data[:50]) == ids[:50]).mean() >= 0.98
    faiss.write_index(index, str(tmp_path / "v.faiss"))
    again = faiss.read_index(str(tmp_path / "v.faiss"))
    assert vec.index_kind(again) == "ivfpq" and (top1(again, data[:50]) == top1(index, data[:50])).all()


def test_too_few_vectors_stay_flat():
    index = vec.build_index("ivfpq", 16, np.arange(20, dtype=np.int64), unit(20, 16, seed=2))
    assert vec.index_kind(index) == "flat"


def test_removal_by_id_keeps_ids_and_positions_consistent():
    n, dim = 4000, 32
    data = unit(n, dim, seed=3)
    ids = np.arange(n, dtype=np.int64) * 3 + 1
    index = vec.build_index("ivfpq", dim, ids, data)
    rng = np.random.default_rng(4)
    gone = rng.choice(ids, 1500, replace=False)
    assert vec.remove_ids(index, np.append(gone, [2, 10**9])) == 1500  # ids it never held are ignored
    assert vec.remove_ids(index, gone[:10]) == 0 and index.ntotal == n - 1500
    extra = unit(300, dim, seed=5)
    extra_ids = np.arange(300, dtype=np.int64) + 10**6
    index.add_with_ids(extra, extra_ids)
    kept = ~np.isin(ids, gone)
    all_ids, all_data = np.concatenate([ids[kept], extra_ids]), np.concatenate([data[kept], extra])
    _outer, refine, ivf, sq8 = vec._ivfpq_parts(index)
    assert index.ntotal == refine.ntotal == ivf.ntotal == sq8.ntotal == len(all_ids)
    assert sorted(faiss.vector_to_array(index.id_map).tolist()) == sorted(all_ids.tolist())
    found = top1(index, all_data)
    assert (found == all_ids).mean() >= 0.98  # every stored vector is still found under its own id
    _scores, hits = index.search(data[~kept][:200], 10, params=vec.search_params(index, None, 10))
    assert not np.isin(hits, gone).any()
    for row, position in ((0, 0), (len(all_ids) - 1, len(all_ids) - 1)):  # the SQ8 copy at a position is that vector
        assert np.allclose(sq8.reconstruct(position), all_data[row], atol=0.02)


def test_a_selector_reaches_the_pq_stage():
    data = unit(2000, 32, seed=6)
    ids = np.arange(2000, dtype=np.int64)
    index = vec.build_index("ivfpq", 32, ids, data)
    allowed = np.array([3, 150, 1999], dtype=np.int64)
    params = vec.search_params(index, faiss.IDSelectorBatch(allowed), k=10)
    _scores, found = index.search(data[[150]], 10, params=params)
    assert found[0][0] == 150 and set(found[0][found[0] >= 0].tolist()) <= set(allowed.tolist())
