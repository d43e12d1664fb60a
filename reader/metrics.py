"""SQuAD v1.1 answer normalisation, exact match and F1, as the official ``evaluate-v1.1.py`` defines them (max over
the gold answers). transformers 5 dropped its copy and ``evaluate`` fetches metric scripts from the hub, so it is
ported here.

It lives with the reader, not in ``sixfold/eval``: the extractive reader groups equal answers by this normalisation and
the reader tuner scores with it, and nothing below the top floor imports ``sixfold``'s own packages (``sixfold.eval.qa``
imports it from here). Standard library only.
"""

from __future__ import annotations

import re
import string
from collections import Counter

_PUNCTUATION = frozenset(string.punctuation)
_ARTICLES = re.compile(r"\b(a|an|the)\b")


def normalize_answer(text: str) -> str:
    """Lower case, no punctuation, no articles, single spaces."""
    text = "".join(ch for ch in text.lower() if ch not in _PUNCTUATION)
    return " ".join(_ARTICLES.sub(" ", text).split())


def exact_match(prediction: str, gold: list[str]) -> float:
    """1.0 when the normalised prediction equals one normalised gold answer."""
    return float(max(normalize_answer(prediction) == normalize_answer(g) for g in gold))


def _token_f1(prediction: str, truth: str) -> float:
    predicted, true = normalize_answer(prediction).split(), normalize_answer(truth).split()
    same = sum((Counter(predicted) & Counter(true)).values())
    if same == 0:
        return 0.0
    precision, recall = same / len(predicted), same / len(true)
    return 2 * precision * recall / (precision + recall)


def f1_score(prediction: str, gold: list[str]) -> float:
    """Token-overlap F1 against the best gold answer."""
    return max(_token_f1(prediction, g) for g in gold)
