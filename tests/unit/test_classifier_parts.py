"""The tuned classifier's model-free parts: SetFit's pair sampling, the stratified hold-out, the linear head and its
saved form, and zero-shot label parsing."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from sixfold.core.errors import SixfoldError
from sixfold.reader.classify import LinearHead, parse_labels
from sixfold.reader.types import LabeledExample
from sixfold.tuner.classifier import contrastive_pairs, split_examples, triplet_batch

EXAMPLES = [LabeledExample(f"{label} text {i}", label) for label in ("a", "b", "c") for i in range(4)]


def test_each_example_gets_a_same_label_and_an_other_label_partner_per_round():
    rows = contrastive_pairs(EXAMPLES, iterations=3, seed=0)
    assert len(rows) == 2 * 3 * len(EXAMPLES)
    label = {e.text: e.label for e in EXAMPLES}
    for first, second, target in rows:
        assert (label[first] == label[second]) == (target == 1.0)
        assert first != second
    assert Counter(first for first, _, target in rows if target == 1.0) == {e.text: 3 for e in EXAMPLES}
    assert contrastive_pairs(EXAMPLES, 3, seed=0) == rows and contrastive_pairs(EXAMPLES, 3, seed=1) != rows


def test_a_label_with_one_example_gets_only_negatives():
    lonely = [*EXAMPLES, LabeledExample("alone", "d")]
    rows = contrastive_pairs(lonely, iterations=2, seed=0)
    assert [t for f, _, t in rows if f == "alone"] == [0.0, 0.0]


def test_the_hold_out_is_stratified_and_disjoint():
    train, held = split_examples(EXAMPLES, 0.25, seed=0)
    assert Counter(e.label for e in held) == {"a": 1, "b": 1, "c": 1}
    assert not {e.text for e in train} & {e.text for e in held} and len(train) + len(held) == len(EXAMPLES)
    single, none = split_examples([LabeledExample("x", "a"), LabeledExample("y", "b")], 0.25, seed=0)
    assert none == [] and len(single) == 2  # a label's only example is never held out


def test_the_linear_head_round_trips_and_gives_distributions(tmp_path):
    rng = np.random.default_rng(0)
    centres = np.eye(3, 8)
    vectors = np.concatenate([c + 0.05 * rng.standard_normal((5, 8)) for c in centres]).astype(np.float32)
    labels = [lab for lab in ("x", "y", "z") for _ in range(5)]
    head = LinearHead.fit(vectors, labels, c=100.0)
    head.save(tmp_path / "head.npz")
    loaded = LinearHead.load(tmp_path / "head.npz")
    probabilities = loaded.probabilities(centres.astype(np.float32))
    assert loaded.labels == ["x", "y", "z"] and np.allclose(probabilities.sum(axis=1), 1.0)
    assert [loaded.labels[i] for i in probabilities.argmax(axis=1)] == ["x", "y", "z"]
    binary = LinearHead.fit(vectors[:10], labels[:10], c=100.0)  # scikit-learn keeps one row for two labels
    assert binary.weights.shape[0] == 1 and binary.probabilities(centres[:2].astype(np.float32)).shape == (2, 2)


def test_zero_shot_labels_parse_names_and_descriptions():
    assert parse_labels("sports, politics") == [("sports", "sports"), ("politics", "politics")]
    assert parse_labels("rain: wet, cold weather; sun: a clear sky") == [("rain", "wet, cold weather"), ("sun", "a clear sky")]
    assert parse_labels(["a: first", "b"]) == [("a", "first"), ("b", "b")]
    with pytest.raises(SixfoldError, match="at least two labels"):
        parse_labels("only")
    with pytest.raises(SixfoldError, match="given twice"):
        parse_labels("a, a")


def test_a_triplet_batch_holds_two_texts_of_as_many_labels_as_fit():
    assert [triplet_batch(16, labels) for labels in (2, 6, 8, 12, 77)] == [16, 16, 16, 24, 32]
