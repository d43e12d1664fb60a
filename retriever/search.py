"""One search(): dense, lexical or hybrid (a weighted sum of z-scores), optionally reranked by a cross-encoder, with
a metadata filter."""

from __future__ import annotations

import numpy as np

from sixfold.core.errors import SixfoldError
from sixfold.indexer.store import Snapshot
from sixfold.retriever.dense import dense_search
from sixfold.retriever.filters import allowed_ids
from sixfold.retriever.fusion import reciprocal_rank_fusion, zscore_fusion
from sixfold.retriever.lexical import lexical_search
from sixfold.retriever.rerank import Reranker
from sixfold.retriever.types import Hit

MODES = ("dense", "bm25", "hybrid")
VECTOR_MODES = ("dense", "hybrid")  # the modes that need the query embedded
# Chunks per retriever before fusion. 300 rather than 100: the fused top 10 then no longer depends on how many
# results were asked for (an eval asking for 300 and a user asking for 10 see the same order), and SciFact test
# gains 0.005 nDCG@10 while the other sets move by under 0.001 (bench/fusion_weights.py --candidates 100 / 300).
CANDIDATES = 300
# Hybrid: dense weight w, BM25 1 - w, on each list's z-scores (retriever.fusion.zscore_fusion). Chosen among RRF,
# min-max and z-score mixes on SciFact's train queries (bench/score_fusion.py); against equal-weight RRF it gains
# on the three sets measured (nDCG@10: SciFact test 0.727 -> 0.734, XQuAD-R en 0.865 -> 0.880, es 0.820 -> 0.845), most
# where one retriever is much the stronger: rank fusion cannot see by how far a retriever's best hit leads.
DENSE_WEIGHT = 0.5
RERANK_DEPTH = 50  # fused candidates the cross-encoder reads
RERANK_WEIGHT = 1.0  # weight of the cross-encoder's rank against the first stage's rank (RRF); None: its order alone
MAX_K = 10_000


def default_mode(index_language: str, embedder_languages: tuple[str, ...] | None) -> str:
    """``hybrid``, unless the embedder is known not to read the index's language: then ``bm25``.

    Measured on XQuAD-R es with the English-only all-MiniLM-L6-v2: bm25 0.820 nDCG@10, hybrid 0.659, dense 0.507
    (the English set: hybrid 0.867 > bm25 0.849), so fusing in an embedder that does not read the language hurts.
    """
    if embedder_languages and index_language not in ("none", *embedder_languages):
        return "bm25"
    return "hybrid"


def validate_query(query: str, k: int) -> str:
    if query is None or not query.strip():
        raise SixfoldError("empty query: give some words to search for")
    if k <= 0:
        raise SixfoldError(f"k must be a positive number of results, got {k}")
    if k > MAX_K:
        raise SixfoldError(f"k must be at most {MAX_K}, got {k}")
    return query.strip()


def search(
    snapshot: Snapshot,
    query: str,
    query_vector: np.ndarray | None,
    k: int = 10,
    mode: str = "hybrid",
    where: str | None = None,
    reranker: Reranker | None = None,
    candidates: int = CANDIDATES,
    rerank_depth: int = RERANK_DEPTH,
    rerank_weight: float | None = RERANK_WEIGHT,
) -> list[Hit]:
    """Rank the index's passages for ``query``; scores: cosine (dense), BM25, fused (z-scores) or cross-encoder logits.

    With a reranker, the top ``rerank_depth`` candidates are reordered by reciprocal rank fusion of the
    cross-encoder's order (weight ``rerank_weight``) and the first stage's order (weight 1), so a reranker trained
    on little data refines rather than replaces the first stage; ``rerank_weight=None`` sorts by the cross-encoder
    alone (its logits are then the scores).

    ``query`` is a validated query (``validate_query``: the caller checks it once); ``query_vector`` is it embedded
    with the index's model, needed by the dense and hybrid modes (None for bm25).
    """
    if mode not in MODES:
        raise SixfoldError(f"unknown search mode '{mode}' (choose from {', '.join(MODES)})")
    if mode in VECTOR_MODES and query_vector is None:
        raise SixfoldError(f"internal error: a {mode} search needs the query's vector")
    allowed = allowed_ids(snapshot, where)
    depth = max(candidates, k, rerank_depth if reranker else 0)
    stage: dict[str, dict[int, float]] = {}  # each stage's scores by chunk id (Hit.scores)
    ranked = _first_stage(snapshot, query, query_vector, mode, depth, allowed, stage)
    if reranker is not None and ranked:
        ranked = _rerank(snapshot, query, ranked, reranker, rerank_depth, rerank_weight, stage)
    return _hits(snapshot, ranked[:k], stage)


def _first_stage(
    snapshot: Snapshot,
    query: str,
    query_vector: np.ndarray | None,
    mode: str,
    depth: int,
    allowed: np.ndarray | None,
    stage: dict[str, dict[int, float]],
) -> list[tuple[int, float]]:
    """(chunk id, score) best first from the dense and/or BM25 retriever, fused by score in hybrid mode."""
    if mode in ("dense", "hybrid"):
        assert query_vector is not None  # checked by search()
        stage["dense"] = dict(dense_search(snapshot, query_vector, depth, allowed))
    if mode in ("bm25", "hybrid"):
        stage["bm25"] = dict(lexical_search(snapshot, query, depth, allowed))
    if mode != "hybrid":
        return list(stage[mode].items())
    ranked = zscore_fusion([list(stage["dense"].items()), list(stage["bm25"].items())], [DENSE_WEIGHT, 1.0 - DENSE_WEIGHT])
    stage["fused"] = dict(ranked)
    return ranked


def _rerank(
    snapshot: Snapshot,
    query: str,
    ranked: list[tuple[int, float]],
    reranker: Reranker,
    rerank_depth: int,
    rerank_weight: float | None,
    stage: dict[str, dict[int, float]],
) -> list[tuple[int, float]]:
    """``ranked`` with its top ``rerank_depth`` reordered by the cross-encoder (blended with the first stage's order
    by RRF unless ``rerank_weight`` is None); the rest keep their places after them."""
    head = ranked[:rerank_depth]
    rows = snapshot.chunks([cid for cid, _ in head])
    scores = reranker.score(query, [rows[cid]["text"] for cid, _ in head])
    stage["rerank"] = {cid: float(s) for (cid, _), s in zip(head, scores)}
    reranked = sorted(stage["rerank"].items(), key=lambda item: -item[1])
    if rerank_weight is not None:
        reranked = reciprocal_rank_fusion([reranked, head], [rerank_weight, 1.0])
        stage["blend"] = dict(reranked)
    return reranked + ranked[rerank_depth:]


def _hits(snapshot: Snapshot, top: list[tuple[int, float]], stage: dict[str, dict[int, float]]) -> list[Hit]:
    rows = snapshot.chunks([cid for cid, _ in top])
    return [
        Hit.from_row(rank, float(score), rows[cid], {name: s[cid] for name, s in stage.items() if cid in s})
        for rank, (cid, score) in enumerate(top, start=1)
    ]
