"""Reciprocal rank fusion (retriever/fusion.py): ranks, not scores, decide; weights; ties."""

from __future__ import annotations

import pytest

from sixfold.retriever.fusion import RRF_K, reciprocal_rank_fusion


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
