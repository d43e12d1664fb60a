"""SQuAD v1.1 EM/F1 (reader/metrics.py, a port of the official evaluate-v1.1.py: transformers 5 dropped its copy and
`evaluate` fetches metric scripts from the hub). Expected values worked out by the official script's rules."""

from __future__ import annotations

import pytest

from sixfold.reader.metrics import exact_match, f1_score


@pytest.mark.parametrize(
    ("prediction", "gold", "em", "f1"),
    [
        ("the Eiffel Tower", ["Eiffel Tower"], 1.0, 1.0),  # articles dropped
        ("Normandy,", ["Normandy"], 1.0, 1.0),  # punctuation dropped
        ("DENVER  Broncos", ["Broncos", "Denver Broncos"], 1.0, 1.0),  # case, spaces; best gold wins
        ("in the year 1066", ["1066"], 0.0, 0.5),  # tokens in, year, 1066 vs 1066: P 1/3, R 1
        ("Paris", ["Lyon"], 0.0, 0.0),
        ("", ["Lyon"], 0.0, 0.0),
        ("Rollo Rollo", ["Rollo"], 0.0, 2 / 3),  # counts clipped: P 1/2, R 1
    ],
)
def test_official_squad_rules(prediction, gold, em, f1):
    assert exact_match(prediction, gold) == em
    assert f1_score(prediction, gold) == pytest.approx(f1)
