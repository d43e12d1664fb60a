"""Reciprocal rank fusion (Cormack et al., 2009): robust to the different scales of BM25 and cosine."""

from __future__ import annotations

RRF_K = 60


def reciprocal_rank_fusion(
    rankings: list[list[tuple[int, float]]], weights: list[float] | None = None, k: int = RRF_K
) -> list[tuple[int, float]]:
    """Fuse ranked (id, score) lists into one, scored by sum of weight / (k + rank)."""
    weights = weights or [1.0] * len(rankings)
    fused: dict[int, float] = {}
    for weight, ranking in zip(weights, rankings):
        for rank, (doc_id, _score) in enumerate(ranking, start=1):
            fused[doc_id] = fused.get(doc_id, 0.0) + weight / (k + rank)
    return sorted(fused.items(), key=lambda item: (-item[1], item[0]))
