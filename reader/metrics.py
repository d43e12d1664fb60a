"""SQuAD v1.1 exact match and F1, as defined by the official evaluation script (max over gold answers)."""

from __future__ import annotations

from collections import Counter

from sixfold.reader.extractive import normalize_answer


def exact_match(prediction: str, gold: list[str]) -> float:
    return float(max(normalize_answer(prediction) == normalize_answer(g) for g in gold))


def f1_score(prediction: str, gold: list[str]) -> float:
    def one(pred: str, truth: str) -> float:
        p, t = normalize_answer(pred).split(), normalize_answer(truth).split()
        common = Counter(p) & Counter(t)
        same = sum(common.values())
        if same == 0:
            return 0.0
        precision, recall = same / len(p), same / len(t)
        return 2 * precision * recall / (precision + recall)

    return max(one(prediction, g) for g in gold)
