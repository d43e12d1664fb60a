"""FAISS index construction, choice of exact vs approximate, and the optional GPU copy.

Every index maps chunk ids to vectors (inner product on normalised vectors = cosine):
- ``flat``: exact ``IndexIDMap2(IndexFlatIP)``; the default for small corpora.
- ``ivf``: ``IndexIVFFlat`` (approximate; supports add and remove by id, trained on the corpus).
- ``hnsw``: ``IndexIDMap2(IndexHNSWFlat)`` (approximate; cannot remove, so removals rebuild it).
``auto`` picks flat below ``AUTO_APPROX_THRESHOLD`` vectors and ivf above it.
"""

from __future__ import annotations

import math
import os

import faiss
import numpy as np

from sixfold.core import config
from sixfold.core.errors import SixfoldError

INDEX_TYPES = ("auto", "flat", "ivf", "hnsw")
AUTO_APPROX_THRESHOLD = int(os.environ.get("SIXFOLD_APPROX_THRESHOLD", "100000"))
HNSW_M = 32
HNSW_EF_CONSTRUCTION = 80
HNSW_EF_SEARCH = 96


def resolve_type(requested: str, n_vectors: int) -> str:
    if requested not in INDEX_TYPES:
        raise SixfoldError(f"unknown index type '{requested}' (choose from {', '.join(INDEX_TYPES)})")
    if requested != "auto":
        return requested
    return "ivf" if n_vectors >= AUTO_APPROX_THRESHOLD else "flat"


def ivf_nlist(n_vectors: int) -> int:
    """About 4·sqrt(n) lists, with at least 39 training points per list (FAISS' own guidance)."""
    return max(1, min(int(4 * math.sqrt(max(n_vectors, 1))), max(n_vectors // 39, 1)))


def ivf_nprobe(nlist: int) -> int:
    return max(1, min(nlist, max(16, nlist // 16)))


def index_kind(index: faiss.Index) -> str:
    inner = faiss.downcast_index(index.index) if isinstance(index, faiss.IndexIDMap) else index
    if isinstance(inner, faiss.IndexHNSW):
        return "hnsw"
    if isinstance(inner, faiss.IndexIVF):
        return "ivf"
    return "flat"


def empty_index(kind: str, dim: int) -> faiss.Index:
    if kind == "flat":
        return faiss.IndexIDMap2(faiss.IndexFlatIP(dim))
    if kind == "hnsw":
        hnsw = faiss.IndexHNSWFlat(dim, HNSW_M, faiss.METRIC_INNER_PRODUCT)
        hnsw.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
        return faiss.IndexIDMap2(hnsw)
    raise SixfoldError(f"an empty {kind} index cannot be made without training vectors")


def build_index(kind: str, dim: int, ids: np.ndarray, vectors: np.ndarray, seed: int = 0) -> faiss.Index:
    """A fresh index of ``kind`` holding ``vectors`` under ``ids`` (IVF is trained on a sample of them)."""
    index: faiss.Index
    if kind == "ivf" and len(ids) >= 2 * 39:
        nlist = ivf_nlist(len(ids))
        quantizer = faiss.IndexFlatIP(dim)
        ivf = faiss.IndexIVFFlat(quantizer, dim, nlist, faiss.METRIC_INNER_PRODUCT)
        rng = np.random.default_rng(seed)
        sample = vectors if len(vectors) <= nlist * 256 else vectors[rng.choice(len(vectors), nlist * 256, replace=False)]
        ivf.train(np.ascontiguousarray(sample))
        ivf.nprobe = ivf_nprobe(nlist)
        ivf.own_fields = True
        quantizer.this.disown()  # type: ignore[attr-defined]  # SWIG's handle (not in faiss' stubs): ivf owns it now
        index = ivf
    else:
        index = empty_index("flat" if kind == "ivf" else kind, dim)
    if len(ids):
        index.add_with_ids(np.ascontiguousarray(vectors, dtype=np.float32), np.asarray(ids, dtype=np.int64))
    return index


def search_params(index: faiss.Index, selector: faiss.IDSelector | None, k: int = 0) -> faiss.SearchParameters | None:
    """nprobe / efSearch for one search of ``k`` results. faiss's HNSW does not widen its beam to k by itself
    (efSearch 16 for k = 300 found 42 % of the true top 300 in a check), so efSearch is at least k."""
    kind = index_kind(index)
    if kind == "ivf":
        inner = faiss.extract_index_ivf(index)
        params: faiss.SearchParameters | None = faiss.SearchParametersIVF(nprobe=inner.nprobe)  # type: ignore[call-arg]
    elif kind == "hnsw":  # faiss' stubs lack the keyword constructors of its Python wrappers, and this class
        params = faiss.SearchParametersHNSW(efSearch=max(HNSW_EF_SEARCH, k))  # type: ignore[attr-defined]
    else:
        params = faiss.SearchParameters() if selector is not None else None
    if params is not None and selector is not None:
        params.sel = selector
    return params


def to_gpu_if_available(index: faiss.Index) -> faiss.Index:
    """Copy the index to the first GPU when faiss-gpu is installed and sees one; else return it as is."""
    if (config.forced_device() or "").startswith("cpu"):
        return index
    if not hasattr(faiss, "StandardGpuResources") or faiss.get_num_gpus() == 0:
        return index
    try:
        resources = faiss.StandardGpuResources()
        gpu_index = faiss.index_cpu_to_gpu(resources, 0, index)
        gpu_index.sixfold_resources = resources  # type: ignore[attr-defined]  # keep the resources alive with the index
        return gpu_index
    except Exception:  # e.g. HNSW has no GPU version: search on the CPU
        return index
