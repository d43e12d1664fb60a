"""FAISS index kinds (indexer/vectors.py) on random vectors: exact and approximate search, ids, removal, filters."""

from __future__ import annotations

import faiss
import numpy as np
import pytest

from sixfold.core.errors import SixfoldError
from sixfold.indexer import vectors as vec

from .helpers import DIM, unit_vectors


@pytest.mark.parametrize("kind", ["flat", "ivf", "hnsw"])
def test_each_kind_finds_a_stored_vector_under_its_id(kind):
    data = unit_vectors(400, seed=1)
    ids = np.arange(1000, 1400, dtype=np.int64)
    index = vec.build_index(kind, DIM, ids, data)
    assert vec.index_kind(index) == kind and index.ntotal == 400
    params = vec.search_params(index, None, k=5)
    query = data[[17]]
    scores, found = index.search(query, 5) if params is None else index.search(query, 5, params=params)
    assert found[0][0] == 1017 and scores[0][0] == pytest.approx(1.0, abs=1e-5)
    if kind == "ivf":
        assert params.nprobe == faiss.extract_index_ivf(index).nprobe >= 1
    if kind == "hnsw":
        assert params.efSearch == max(vec.HNSW_EF_SEARCH, 5)


@pytest.mark.parametrize("kind", ["flat", "ivf", "hnsw"])
def test_a_selector_restricts_the_search(kind):
    data = unit_vectors(200, seed=2)
    index = vec.build_index(kind, DIM, np.arange(200, dtype=np.int64), data)
    allowed = np.array([3, 150], dtype=np.int64)
    params = vec.search_params(index, faiss.IDSelectorBatch(allowed), k=10)
    _scores, found = index.search(data[[3]], 10, params=params)
    assert set(found[0][found[0] >= 0].tolist()) <= {3, 150} and found[0][0] == 3


def test_flat_and_ivf_remove_by_id():
    for kind in ("flat", "ivf"):
        index = vec.build_index(kind, DIM, np.arange(100, dtype=np.int64), unit_vectors(100, seed=3))
        assert index.remove_ids(np.array([5, 6], dtype=np.int64)) == 2 and index.ntotal == 98


def test_small_ivf_falls_back_to_flat_and_auto_picks_by_size():
    assert vec.index_kind(vec.build_index("ivf", DIM, np.arange(10, dtype=np.int64), unit_vectors(10, seed=4))) == "flat"
    assert vec.resolve_type("auto", 10) == "flat"
    assert vec.resolve_type("auto", vec.AUTO_APPROX_THRESHOLD) == "ivf"
    with pytest.raises(SixfoldError, match="unknown index type"):
        vec.resolve_type("lsh", 10)
    with pytest.raises(SixfoldError, match="cannot be made without training vectors"):
        vec.empty_index("ivf", DIM)


def test_ivf_sizes_follow_faiss_guidance():
    assert vec.ivf_nlist(100_000) == min(int(4 * 100_000**0.5), 100_000 // 39)
    assert vec.ivf_nlist(1) == 1 and vec.ivf_nprobe(1) == 1 and vec.ivf_nprobe(1024) == 64


def test_no_gpu_copy_when_the_cpu_is_forced(monkeypatch):
    index = vec.empty_index("flat", DIM)
    monkeypatch.setenv("SIXFOLD_DEVICE", "cpu")
    assert vec.to_gpu_if_available(index) is index
