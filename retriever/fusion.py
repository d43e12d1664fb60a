"""Fusing the dense and BM25 rankings: by rank (reciprocal rank fusion, Cormack et al. 2009) or by score, after
normalising each list's scores (min-max, or z-scores as in OpenSearch's hybrid query), so BM25's scale and cosine's
can be added. Hybrid search uses z-scores (bench/score_fusion.py: better than RRF on SciFact and XQuAD-R en, es)."""

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


def convex_score_fusion(rankings: list[list[tuple[int, float]]], weights: list[float] | None = None) -> list[tuple[int, float]]:
    """Fuse ranked (id, score) lists by a weighted sum of their min-max normalised scores (0 where a list lacks
    the id), as Weaviate's relative-score fusion does: unlike RRF, how far ahead a retriever's best hit is counts."""
    weights = weights or [1.0 / len(rankings)] * len(rankings)
    fused: dict[int, float] = {}
    for weight, ranking in zip(weights, rankings):
        if not ranking:
            continue
        scores = [score for _, score in ranking]
        low, high = min(scores), max(scores)
        span = high - low
        for doc_id, score in ranking:
            normalised = (score - low) / span if span > 0 else 1.0
            fused[doc_id] = fused.get(doc_id, 0.0) + weight * normalised
    return sorted(fused.items(), key=lambda item: (-item[1], item[0]))


def zscore_fusion(rankings: list[list[tuple[int, float]]], weights: list[float] | None = None) -> list[tuple[int, float]]:
    """Fuse ranked (id, score) lists by a weighted sum of z-scores (each list's scores less their mean, over their
    standard deviation); an id a list lacks gets that list's lowest z-score, as if it were just below its last hit.
    A list whose scores do not spread (one hit, or ties only) gives its hits 1 and the ids it lacks 0, so a lone
    BM25 match still counts."""
    weights = weights or [1.0 / len(rankings)] * len(rankings)
    normalised: list[tuple[float, dict[int, float], float]] = []
    for weight, ranking in zip(weights, rankings):
        if not ranking:
            continue
        scores = [score for _, score in ranking]
        mean = sum(scores) / len(scores)
        sd = (sum((s - mean) ** 2 for s in scores) / len(scores)) ** 0.5
        if sd <= 1e-12 * max(1.0, abs(mean)):
            normalised.append((weight, {doc_id: 1.0 for doc_id, _ in ranking}, 0.0))
            continue
        z = {doc_id: (score - mean) / sd for doc_id, score in ranking}
        normalised.append((weight, z, min(z.values())))
    ids = {doc_id for _, z, _ in normalised for doc_id in z}
    fused = {doc_id: sum(weight * z.get(doc_id, floor) for weight, z, floor in normalised) for doc_id in ids}
    return sorted(fused.items(), key=lambda item: (-item[1], item[0]))
