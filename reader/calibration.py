"""Answer confidence: the probability that a generated answer is right, from what the reader measured.

A language model's own token probabilities are over-confident and a passage's similarity alone cannot tell a right
answer from a wrong one in the right passage, so the confidence is a logistic model over both and over how well the
answer's sentence supports it (``Features``). ``WEIGHTS`` were fitted by ``bench/calibrate_answers.py`` on held-out
questions (see docs/benchmarks.md for the command, the data, the reliability curve and its ECE); refit them there
when the default model changes.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

FEATURES = ("evidence", "probability", "support", "cited_sentence", "cited_rank", "answerable", "asked")


@dataclass(frozen=True)
class Features:
    evidence: float  # cosine of the question to the best passage
    probability: float | None  # geometric mean probability of the answer's tokens (None: the runtime gives none)
    support: float  # share of the answer's content words in its quoted sentence
    cited_sentence: bool  # the model cited the sentence that states the answer (not found by sixfold after it)
    cited_rank: int  # rank of the cited passage (0: the best)
    # the model's probability of answering rather than saying NOT FOUND (reader.generative; None: not measured)
    answerable: float | None = None
    # share of the question's content words in the quoted sentence (None: not measured; counted as 0.5). A sentence
    # that supports the answer's words but shares none of the question's may be about something else: "Valgrind is
    # the name of the main entrance to Valhalla" for "What was Valgrind called before it was released?"
    asked: float | None = None

    def vector(self) -> list[float]:
        probability = 0.5 if self.probability is None else self.probability
        answerable = 0.5 if self.answerable is None else self.answerable
        asked = 0.5 if self.asked is None else self.asked
        return [
            self.evidence,
            probability,
            self.support,
            float(self.cited_sentence),
            float(min(self.cited_rank, 5)),
            answerable,
            asked,
        ]

    def to_dict(self) -> dict:
        return asdict(self)


# Intercept first, then one weight per FEATURES entry. Fitted 2026-12-07 with Qwen2.5-Coder-1.5B-Instruct on 200
# held-out SQuAD v1.1 dev questions (bench/calibrate_answers.py, two runs refitted together with --rows, ``asked``
# left out): 120 answerable, 40 on-topic unanswerable (their paragraph left out of the index), 40 about articles not
# indexed; 120 verified answers, cross-validated ECE 0.143. ``asked`` has weight 0: fitted with it (weight 2.3), SQuAD
# improved (answers at >= 0.8 right 40 of 42) but the folder set fell from 35 to 28 of 46 right, its paraphrased
# questions sharing few words with the answering sentence (SQuAD's were written looking at the paragraph).
WEIGHTS: tuple[float, ...] = (-1.731, 0.789, 2.799, 0.033, -0.429, -0.978, 0.71, 0.0)


def calibrated(features: Features, weights: tuple[float, ...] = WEIGHTS) -> float:
    """P(right | features) under the logistic model ``weights``."""
    z = weights[0] + sum(w * x for w, x in zip(weights[1:], features.vector(), strict=True))
    return 1.0 / (1.0 + math.exp(-z))
