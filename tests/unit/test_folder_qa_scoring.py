"""Scoring of folder QA sets (sixfold/eval/qa.py), model-free: what counts as a correct answer, the outcome of each
question, calibration, and a report whose counts add up."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from sixfold.eval.datasets import FolderQuestion
from sixfold.eval.qa import FolderQAItem, _folder_report, _outcome, _percentile, answer_correct, calibration
from sixfold.eval.reports import write_report


@pytest.mark.parametrize(
    ("text", "answers", "regex", "expected"),
    [
        ("Philip A. Nelson", ["Philip Nelson"], None, True),  # SQuAD normalisation drops the article "a"
        ("It was written by Philip A. Nelson.", ["Philip A. Nelson"], None, True),  # contained, as whole words
        ("The answer is 3 spaces with 8 space tab", ["3 spaces"], None, True),
        ("Use `yaml.safe_load(stream)`", ["yaml.safe_load"], None, True),  # as written, inside code
        ("-D LIBXML2_WITH_PYTHON=OFF", ["LIBXML2_WITH_PYTHON"], None, True),
        ("red", ["red"], None, True),
        ("reduced", ["red"], None, False),  # not part of a word
        ("bored", ["red"], None, False),
        ("SHA-1", ["SHA256"], None, False),
        ("not found in the corpus", ["no"], None, False),
        ("anything at all", [], r"safe_load", False),
        ("call SAFE_LOAD", [], r"safe_load", True),  # the regex is searched case-insensitively
        ("VT 9", [], r"\b9\b", True),
        ("VT 19", [], r"\b9\b", False),
    ],
)
def test_what_counts_as_a_correct_answer(text, answers, regex, expected):
    assert answer_correct(text, answers, regex) is expected


def question(answers=("x",), sources=("a.md",)) -> FolderQuestion:
    return FolderQuestion("q?", list(answers), None, list(sources), 1)


def test_each_outcome():
    answerable, unanswerable = question(), question(answers=(), sources=())
    assert _outcome(answerable, True, True, ["b.md", "a.md"]) == "right"
    assert _outcome(answerable, True, True, ["b.md"]) == "wrong_source"
    assert _outcome(answerable, True, False, ["a.md"]) == "wrong"
    assert _outcome(answerable, False, False, []) == "missed"
    assert _outcome(unanswerable, False, False, []) == "abstained"
    assert _outcome(unanswerable, True, False, ["a.md"]) == "answered"


def test_calibration_bins_ece_and_brier():
    cal = calibration([0.95, 0.85, 0.15, 0.15, 1.7], [True, False, False, True, True])
    assert cal.answers == 5
    by_low = {round(b.low, 1): b for b in cal.bins if b.count}
    assert sorted(by_low) == [0.1, 0.8, 0.9], "1.7 is clamped to 1.0 and falls in the last bin"
    assert by_low[0.1].count == 2 and by_low[0.1].accuracy == 0.5 and by_low[0.1].confidence == pytest.approx(0.15)
    assert by_low[0.9].count == 2 and by_low[0.9].confidence == pytest.approx(0.975) and by_low[0.9].accuracy == 1.0
    # ECE: (2/5)|0.5-0.15| + (1/5)|0-0.85| + (2/5)|1-0.975|
    assert cal.ece == pytest.approx(0.4 * 0.35 + 0.2 * 0.85 + 0.4 * 0.025)
    assert cal.brier == pytest.approx((0.05**2 + 0.85**2 + 0.15**2 + 0.85**2 + 0) / 5)
    assert cal.confident_answers == 3 and cal.confident_right_pct == pytest.approx(200 / 3)
    empty = calibration([], [])
    assert empty.answers == 0 and empty.ece is None and empty.brier is None and empty.confident_right_pct is None


def test_percentiles_are_nearest_rank():
    values = [float(v) for v in range(1, 21)]
    assert _percentile(values, 0.5) == 10.0 and _percentile(values, 0.95) == 19.0 and _percentile([4.0], 0.95) == 4.0
    assert _percentile([], 0.5) == 0.0


def item(line: int, answerable: bool, outcome: str, confidence: float, seconds: float) -> FolderQAItem:
    found = outcome not in ("missed", "abstained")
    sources = ["a.md"] if answerable else []
    return FolderQAItem(
        line, f"q{line}?", answerable, sources, "x" if found else "not found", found, confidence,
        ["a.md"] if found else [], answerable or None, outcome, seconds, "generative",
    )  # fmt: skip


def test_a_report_whose_counts_add_up(tmp_path):
    items = [
        item(1, True, "right", 0.9, 1.0),
        item(2, True, "wrong", 0.85, 2.0),  # wrong and confident
        item(3, True, "wrong_source", 0.6, 3.0),
        item(4, True, "missed", 0.1, 4.0),
        item(5, False, "abstained", 0.2, 5.0),
        item(6, False, "answered", 0.95, 6.0),  # answered an unanswerable question, confidently
        item(7, False, "answered", 0.5, 7.0),
    ]
    report = _folder_report(items, "q.jsonl", Path("docs"), Path("idx"), 5, "auto", None, None, 0.8, 1.5)
    assert (report.questions, report.answerable, report.unanswerable) == (7, 4, 3)
    assert report.counts == {"right": 1, "wrong_source": 1, "wrong": 1, "missed": 1, "abstained": 1, "answered": 2}
    assert report.right_pct == 25.0 and report.abstained_pct == pytest.approx(100 / 3)
    assert report.wrong_confident == 2
    assert report.calibration.answers == 5 and report.calibration.confident_answers == 3
    assert report.calibration.confident_right_pct == pytest.approx(100 / 3)
    assert report.p50_s == 4.0 and report.p95_s == 7.0 and report.mode == "generative"
    written = json.loads(write_report(report, tmp_path / "r.json").read_text())  # the one JSON form, written whole
    assert written["counts"] == report.counts and len(written["items"]) == 7
    assert written["calibration"]["bins"][9]["count"] == 2 and math.isclose(written["right_pct"], 25.0)
