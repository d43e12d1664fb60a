"""FAISS index construction, choice of exact vs approximate, and the optional GPU copy.

Every index maps chunk ids to vectors (inner product on normalised vectors = cosine):
- ``flat``: exact ``IndexIDMap2(IndexFlatIP)``; the default for small corpora.
- ``ivf``: ``IndexIVFFlat`` (approximate; supports add and remove by id, trained on the corpus).
- ``hnsw``: ``IndexIDMap2(IndexHNSWFlat)`` (approximate; cannot remove, so removals rebuild it).
- ``ivfpq``: ``IndexIDMap2(IndexRefine(IndexIVFPQ, SQ8))``, the compressed index for corpora past what float32
  vectors fit in memory: product-quantised codes (dim/8 bytes) are scanned for ``IVFPQ_K_FACTOR`` x k candidates,
  which 8-bit scalar-quantised copies (dim bytes) re-score, so a vector costs about dim + dim/8 + 16 bytes instead
  of 4·dim (440 instead of 1,544 at 384-d). Trained on a sample (``IVFPQ_TRAIN_PER_LIST`` points per list);
  removal by id renumbers the refine positions in place (:func:`remove_ids`), no retraining.
``auto`` picks flat below ``AUTO_APPROX_THRESHOLD`` vectors and ivf above it; it never picks ivfpq, which is asked
for by name (``--index-type ivfpq``): ivf is exact-er at the sizes where its float32 vectors still fit.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterable
from typing import Any

import faiss
import numpy as np

from sixfold.core import config
from sixfold.core.errors import SixfoldError

INDEX_TYPES = ("auto", "flat", "ivf", "hnsw", "ivfpq")
AUTO_APPROX_THRESHOLD = int(os.environ.get("SIXFOLD_APPROX_THRESHOLD", "100000"))
HNSW_M = 32
HNSW_EF_CONSTRUCTION = 80
HNSW_EF_SEARCH = 96
TRAINED_KINDS = ("ivf", "ivfpq")  # trained on the corpus: too few vectors stay flat, a grown corpus retrains them
IVF_MIN_VECTORS = 2 * 39  # fewer vectors than this and an ivf / ivfpq index stays flat (39 training points per list)
IVFPQ_TRAIN_PER_LIST = 64  # k-means points per list: 64 gave the recall of 256 at 1M for a quarter of the time
# ivf likewise (it trained on 256 per list, FAISS' ceiling: every vector up to ~1M): at 1M, recall@10 1.000 either
# way, k-means 49.5 s instead of 152 s (docs/benchmarks.md, "IVF build time"); corpora under 65k vectors train on all.
IVF_TRAIN_PER_LIST = 64
IVFPQ_K_FACTOR = 4  # PQ candidates per wanted result, re-scored with the SQ8 copies
IVFPQ_NPROBE = 32


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


def ivfpq_nlist(n_vectors: int) -> int:
    """About sqrt(n) lists, fewer than ivf's 4·sqrt(n): scanning PQ codes is cheap, assigning and k-means are not
    (at 10M, 3,162 lists instead of 12,649 make training and adding 4x cheaper)."""
    return max(1, min(int(math.sqrt(max(n_vectors, 1))), max(n_vectors // 39, 1)))


def ivfpq_nprobe(nlist: int) -> int:
    """32 lists whatever the size (bench/vector_scale.py, k = 300, k_factor 4): recall@10 0.964 at 1M in 2.9 ms and
    0.967 at 10M in 5.2 ms; nlist/16 (197 at 10M) gained 0.001 for 20.7 ms."""
    return max(1, min(nlist, IVFPQ_NPROBE))


def pq_subquantizers(dim: int) -> int:
    """PQ sub-vectors of about 8 dimensions each (48 for 384-d): the largest divisor of ``dim`` up to dim/8."""
    return next(m for m in range(max(dim // 8, 1), 0, -1) if dim % m == 0)


def pq_bits(n_train: int) -> int:
    """8 bits per code (256 centroids per sub-vector) once there are >= 4 training points per centroid; fewer bits
    for a small corpus, where PQ training would otherwise fail (the SQ8 re-scoring keeps the ranking)."""
    return max(1, min(8, int(math.log2(max(n_train, 2) / 4))))


def _ivfpq_parts(index: faiss.Index) -> tuple[Any, Any, Any, Any]:
    """(IndexIDMap2, IndexRefine, IndexIVFPQ, SQ8 index) of an ivfpq index (Any: faiss' stubs type each as Index)."""
    outer: Any = index
    refine: Any = faiss.downcast_index(outer.index)
    return outer, refine, faiss.downcast_index(refine.base_index), faiss.downcast_index(refine.refine_index)


def index_kind(index: faiss.Index) -> str:
    inner = faiss.downcast_index(index.index) if isinstance(index, faiss.IndexIDMap) else index
    if isinstance(inner, faiss.IndexRefine):
        return "ivfpq"
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


def train_ivfpq(dim: int, sample: np.ndarray, n_vectors: int) -> faiss.Index:
    """An empty, trained ivfpq index for about ``n_vectors`` vectors, trained on ``sample`` (every row is used)."""
    nlist = ivfpq_nlist(n_vectors)
    quantizer = faiss.IndexFlatIP(dim)
    ivf = faiss.IndexIVFPQ(quantizer, dim, nlist, pq_subquantizers(dim), pq_bits(len(sample)), faiss.METRIC_INNER_PRODUCT)
    ivf.cp.min_points_per_centroid = ivf.pq.cp.min_points_per_centroid = 1  # small samples are sized above: no warning
    ivf.own_fields = True
    quantizer.this.disown()  # type: ignore[attr-defined]  # SWIG's handle: ivf owns the quantizer now
    sq8 = faiss.IndexScalarQuantizer(dim, faiss.ScalarQuantizer.QT_8bit, faiss.METRIC_INNER_PRODUCT)
    refine = faiss.IndexRefine(ivf, sq8)
    refine.own_fields = refine.own_refine_index = True
    ivf.this.disown()  # type: ignore[attr-defined]
    sq8.this.disown()  # type: ignore[attr-defined]
    refine.train(np.ascontiguousarray(sample, dtype=np.float32))
    refine.k_factor = IVFPQ_K_FACTOR
    ivf.nprobe = ivfpq_nprobe(nlist)
    index = faiss.IndexIDMap2(refine)
    index.own_fields = True
    refine.this.disown()  # type: ignore[attr-defined]
    return index


def remove_ids(index: faiss.Index, ids: np.ndarray) -> int:
    """Remove ``ids`` from any kind but hnsw; returns how many were there.

    faiss' IndexRefine cannot remove, so for ivfpq this does it by hand: the PQ lists and the SQ8 copies are addressed
    by position, so drop the positions from both and renumber the PQ lists' entries to the compacted positions."""
    ids = np.asarray(ids, dtype=np.int64)
    if index_kind(index) != "ivfpq":
        return int(index.remove_ids(ids))  # type: ignore[arg-type]  # faiss wraps remove_ids to take ids
    outer, refine, ivf, sq8 = _ivfpq_parts(index)
    id_map = faiss.vector_to_array(outer.id_map)
    gone = np.isin(id_map, ids)
    if not gone.any():
        return 0
    positions = faiss.IDSelectorBatch(np.flatnonzero(gone).astype(np.int64))
    ivf.remove_ids(positions)
    sq8.remove_ids(positions)
    new_position = np.cumsum(~gone) - 1
    lists = ivf.invlists
    for list_no in range(ivf.nlist):
        size = lists.list_size(list_no)
        if size:
            entries = faiss.rev_swig_ptr(lists.get_ids(list_no), size)
            entries[:] = new_position[entries]
    kept = id_map[~gone]
    faiss.copy_array_to_vector(kept, outer.id_map)
    outer.construct_rev_map()
    outer.ntotal = refine.ntotal = len(kept)
    return int(gone.sum())


def training_rows(kind: str, n_vectors: int, seed: int = 0) -> np.ndarray | None:
    """The rows (positions among ``n_vectors``, in the order they train) that train a fresh index of ``kind``: all
    of them, or a random sample once there are more than training needs; ``None`` for a kind that is not trained, or
    too few vectors to train one (it stays flat). A function of its own so that ``build_index_in_blocks`` asks its
    caller for these rows only (``store`` reads them from DuckDB), then takes the rest block by block."""
    rng = np.random.default_rng(seed)
    if kind == "ivfpq" and n_vectors >= IVF_MIN_VECTORS:
        n_train = ivfpq_nlist(n_vectors) * IVFPQ_TRAIN_PER_LIST
        return np.arange(n_vectors) if n_vectors <= n_train else np.sort(rng.choice(n_vectors, n_train, replace=False))
    if kind == "ivf" and n_vectors >= IVF_MIN_VECTORS:
        n_train = ivf_nlist(n_vectors) * IVF_TRAIN_PER_LIST
        return np.arange(n_vectors) if n_vectors <= n_train else rng.choice(n_vectors, n_train, replace=False)
    return None


def trained_index(kind: str, dim: int, n_vectors: int, sample: np.ndarray | None) -> faiss.Index:
    """An empty index of ``kind`` for about ``n_vectors`` vectors, trained on ``sample`` (the ``training_rows``; a
    trained kind given none is flat)."""
    if sample is None or kind not in TRAINED_KINDS:
        return empty_index("flat" if kind in TRAINED_KINDS else kind, dim)
    if kind == "ivfpq":
        return train_ivfpq(dim, sample, n_vectors)
    nlist = ivf_nlist(n_vectors)
    quantizer = faiss.IndexFlatIP(dim)
    ivf = faiss.IndexIVFFlat(quantizer, dim, nlist, faiss.METRIC_INNER_PRODUCT)
    ivf.train(np.ascontiguousarray(sample, dtype=np.float32))
    ivf.nprobe = ivf_nprobe(nlist)
    ivf.own_fields = True
    quantizer.this.disown()  # type: ignore[attr-defined]  # SWIG's handle (not in faiss' stubs): ivf owns it now
    return ivf


def reserve(index: faiss.Index, n_vectors: int) -> None:
    """Make room for ``n_vectors`` in a flat index before it is filled block by block: its codes are one
    ``std::vector`` that doubles as it grows, so the last doubling held the old and the new buffer at once (a 1M
    384-d flat index filled in blocks of 100k peaked at 2.7 GB instead of 1.9). A vector shrunk by ``resize`` keeps its
    capacity (C++ guarantees it), which is how room is made: FAISS does not wrap ``reserve``. Other kinds: nothing."""
    inner = faiss.downcast_index(index.index) if isinstance(index, faiss.IndexIDMap) else index
    if isinstance(inner, faiss.IndexFlat) and inner.ntotal == 0 and n_vectors > 0:
        inner.codes.resize(int(n_vectors) * inner.code_size)
        inner.codes.resize(0)


def build_index_in_blocks(
    kind: str,
    dim: int,
    n_vectors: int,
    training_vectors: Callable[[np.ndarray], np.ndarray],
    blocks: Iterable[tuple[np.ndarray, np.ndarray]],
    seed: int = 0,
) -> faiss.Index:
    """A fresh index of ``kind`` for ``n_vectors`` vectors that need not all be in memory at once: trained on
    ``training_vectors(rows)`` (the ``training_rows``, by position), then filled from ``blocks`` of (ids, vectors) in
    that order of positions. ``store`` reads them from DuckDB this way; ``build_index`` passes one block."""
    rows = training_rows(kind, n_vectors, seed)
    index = trained_index(kind, dim, n_vectors, None if rows is None else training_vectors(rows))
    reserve(index, n_vectors)
    for ids, vectors in blocks:
        if len(ids):
            index.add_with_ids(np.ascontiguousarray(vectors, dtype=np.float32), np.asarray(ids, dtype=np.int64))
    return index


def build_index(kind: str, dim: int, ids: np.ndarray, vectors: np.ndarray, seed: int = 0) -> faiss.Index:
    """A fresh index of ``kind`` holding ``vectors`` under ``ids`` (IVF is trained on a sample of them)."""
    return build_index_in_blocks(kind, dim, len(ids), lambda rows: vectors[rows], [(ids, vectors)], seed)


def search_params(index: faiss.Index, selector: faiss.IDSelector | None, k: int = 0) -> faiss.SearchParameters | None:
    """nprobe / efSearch for one search of ``k`` results. faiss's HNSW does not widen its beam to k by itself
    (efSearch 16 for k = 300 found 42 % of the true top 300 in a check), so efSearch is at least k. ivfpq: nprobe and
    k_factor from the index; the selector goes to the PQ stage, translated to its positions (faiss' IndexRefine
    drops a selector set on its own parameters)."""
    kind = index_kind(index)
    if kind == "ivfpq":
        outer, refine, ivf, _sq8 = _ivfpq_parts(index)
        base: Any = faiss.SearchParametersIVF(nprobe=ivf.nprobe)  # type: ignore[call-arg]
        if selector is not None:
            base.sel = faiss.IDSelectorTranslated(outer.id_map, selector)
        refined: Any = faiss.IndexRefineSearchParameters(k_factor=refine.k_factor, base_index_params=base)  # type: ignore[call-arg]
        refined.sixfold_keep = (base, selector)  # the C++ side holds raw pointers to them: keep them alive with it
        return refined
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
