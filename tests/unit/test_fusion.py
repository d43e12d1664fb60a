"""Reciprocal rank fusion (retriever/fusion.py): ranks, not scores, decide; weights; ties."""

from __future__ import annotations

import pytest

from sixfold.retriever.fusion import RRF_K, convex_score_fusion, reciprocal_rank_fusion, zscore_fusion


def test_one_ranking_keeps_its_order_with_rrf_scores():
    fused = reciprocal_rank_fusion([[(7, 12.0), (3, 0.5), (9, -4.0)]])
    assert [doc for doc, _ in fused] == [7, 3, 9]
    assert [score for _, score in fused] == pytest.approx([1 / (RRF_K + 1), 1 / (RRF_K + 2), 1 / (RRF_K + 3)])


def test_agreement_beats_one_first_place_and_scales_do_not_matter():
    dense = [(1, 0.91), (2, 0.90), (4, 0.10)]
    bm25 = [(2, 35.0), (3, 30.0), (1, 0.1)]  # BM25 scores are on another scale entirely
    fused = dict(reciprocal_rank_fusion([dense, bm25]))
    assert fused[2] == pytest.approx(1 / 62 + 1 / 61)
    assert fused[1] == pytest.approx(1 / 61 + 1 / 63)
    assert fused[3] == pytest.approx(1 / 62) and fused[4] == pytest.approx(1 / 63)
    assert [doc for doc, _ in reciprocal_rank_fusion([dense, bm25])] == [2, 1, 3, 4]
    scaled = [(doc, score * 1000) for doc, score in bm25]
    assert reciprocal_rank_fusion([dense, scaled]) == reciprocal_rank_fusion([dense, bm25])


def test_weights_tilt_the_fusion():
    a, b = [(1, 1.0), (2, 0.5)], [(2, 1.0), (1, 0.5)]
    assert reciprocal_rank_fusion([a, b], [2.0, 1.0])[0][0] == 1
    assert reciprocal_rank_fusion([a, b], [1.0, 2.0])[0][0] == 2
    assert dict(reciprocal_rank_fusion([a, b], [0.0, 1.0]))[1] == pytest.approx(1 / 62)


def test_ties_break_by_id_and_k_is_the_smoothing_constant():
    assert reciprocal_rank_fusion([[(5, 1.0)], [(2, 1.0)]]) == [(2, pytest.approx(1 / 61)), (5, pytest.approx(1 / 61))]
    assert reciprocal_rank_fusion([[(1, 1.0), (2, 0.0)]], k=0) == [(1, 1.0), (2, 0.5)]


def test_nothing_to_fuse():
    assert reciprocal_rank_fusion([]) == []
    assert reciprocal_rank_fusion([[], []]) == []


def test_min_max_fusion_mixes_normalised_scores():
    dense = [(1, 0.9), (2, 0.5), (3, 0.1)]
    bm25 = [(3, 30.0), (1, 10.0)]  # another scale: only the position inside its own range counts
    fused = dict(convex_score_fusion([dense, bm25], [0.5, 0.5]))
    assert fused[1] == pytest.approx(0.5 * 1.0 + 0.5 * 0.0)
    assert fused[2] == pytest.approx(0.5 * 0.5)  # absent from BM25: 0 there
    assert fused[3] == pytest.approx(0.5 * 0.0 + 0.5 * 1.0)
    scaled = [(doc, 100 * s + 7) for doc, s in bm25]
    assert convex_score_fusion([dense, scaled], [0.5, 0.5]) == convex_score_fusion([dense, bm25], [0.5, 0.5])


def test_score_fusion_lets_a_clear_winner_win_where_rrf_ties():
    # doc 1 is far ahead on dense and a close second on BM25; doc 2 is the reverse, far behind on dense
    dense = [(1, 0.95), (2, 0.20), (3, 0.19)]
    bm25 = [(2, 10.0), (1, 9.9), (3, 0.1)]
    assert convex_score_fusion([dense, bm25])[0][0] == 1
    rrf = dict(reciprocal_rank_fusion([dense, bm25]))
    assert rrf[1] == pytest.approx(rrf[2])  # ranks 1 + 2 either way


def test_score_fusion_of_one_hit_lists_and_empty_lists():
    assert convex_score_fusion([[(4, 2.0)], []], [0.5, 0.5]) == [(4, 0.5)]
    assert convex_score_fusion([[], []]) == []


def test_zscore_fusion_standardises_each_list_and_floors_missing_ids():
    dense = [(1, 0.9), (2, 0.5), (3, 0.1)]  # z = 1.2247, 0, -1.2247
    bm25 = [(3, 30.0), (1, 10.0)]  # z = 1, -1
    fused = dict(zscore_fusion([dense, bm25], [0.5, 0.5]))
    assert fused[1] == pytest.approx(0.5 * 1.2247449 + 0.5 * -1.0)
    assert fused[2] == pytest.approx(0.5 * 0.0 + 0.5 * -1.0)  # not in BM25's list: its lowest z-score
    assert fused[3] == pytest.approx(0.5 * -1.2247449 + 0.5 * 1.0)
    scaled = [(doc, 100 * s + 7) for doc, s in bm25]
    assert dict(zscore_fusion([dense, scaled], [0.5, 0.5])) == pytest.approx(fused)
    assert zscore_fusion([[(4, 2.0)], []]) == [(4, 0.5)]  # one hit: no spread, so 1 (weight 0.5)
    assert dict(zscore_fusion([dense, [(2, 7.0)]], [0.5, 0.5]))[2] == pytest.approx(0.5 * 0.0 + 0.5 * 1.0)
    assert zscore_fusion([dense, bm25])[0][0] == 1  # dense's clear winner, second on BM25
