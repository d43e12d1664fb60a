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

FEATURES = ("evidence", "probability", "support", "cited_sentence", "cited_rank", "answerable", "asked", "judged")


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
    # the model's probability that the quoted sentence supports the answer to the question (``reader.judge``; None:
    # not measured, counted as 0.5)
    judged: float | None = None

    def vector(self) -> list[float]:
        probability = 0.5 if self.probability is None else self.probability
        answerable = 0.5 if self.answerable is None else self.answerable
        asked = 0.5 if self.asked is None else self.asked
        judged = 0.5 if self.judged is None else self.judged
        return [
            self.evidence,
            probability,
            self.support,
            float(self.cited_sentence),
            float(min(self.cited_rank, 5)),
            answerable,
            asked,
            judged,
        ]

    def to_dict(self) -> dict:
        return asdict(self)


# Intercept first, then one weight per FEATURES entry. Fitted 2026-12-07 with Qwen2.5-Coder-1.5B-Instruct on 200
# held-out SQuAD v1.1 dev questions (bench/calibrate_answers.py, two runs refitted together with --rows): 120
# answerable, 40 on-topic unanswerable (their paragraph left out of the index), 40 about articles not indexed; 126
# verified answers, cross-validated ECE 0.134. Left out (weight 0): ``asked`` (the folder's paraphrased questions
# share few words with the answering sentence; SQuAD's were written looking at the paragraph) and ``cited_rank``
# (one paragraph per topic in SQuAD puts the answer first; a folder's chunks put it at ranks 2-4 as often: fitted in,
# it held back 5 right answers of the English and Spanish folder sets). ``judged``, the model's own check, carries
# the most weight next to the answer's token probability.
WEIGHTS: tuple[float, ...] = (-3.699, 0.406, 2.761, 0.127, -0.164, 0.0, 0.474, 0.0, 2.417)


def calibrated(features: Features, weights: tuple[float, ...] = WEIGHTS) -> float:
    """P(right | features) under the logistic model ``weights``."""
    z = weights[0] + sum(w * x for w, x in zip(weights[1:], features.vector(), strict=True))
    return 1.0 / (1.0 + math.exp(-z))
