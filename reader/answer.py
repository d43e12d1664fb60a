"""The /answers use: retrieve passages, read them (extractive or generative), cite them, or abstain.

Abstention has two gates, both calibrated on SQuAD v1.1 dev (see docs/benchmarks.md):
- evidence: when the best passage's cosine similarity to the question is below ``MIN_EVIDENCE``,
  the corpus most likely does not hold the answer and no reader runs;
- reader: an extractive span whose score is below ``MIN_SPAN_SCORE``, or a generative answer that says
  NOT FOUND, is not given as an answer.
In both cases the answer is "not found in the corpus" with the closest passages, never an invented one.
"""

from __future__ import annotations

import re

from sixfold.reader.extractive import ExtractiveReader
from sixfold.reader.generative import generate_answer
from sixfold.reader.llm import CausalLM
from sixfold.reader.types import NOT_FOUND, Answer, Citation, Passage

# Calibrated with bench/squad_eval.py on SQuAD v1.1 dev (all-MiniLM-L6-v2): the index holds half of the articles;
# questions about them are answerable, questions about the other half are not. 0.46 separated the two best
# (88% correct decisions on 400 questions; median top cosine 0.61 answerable vs 0.33 absent); 0.45 keeps a
# little more recall for questions phrased far from the passage wording.
MIN_EVIDENCE = 0.45
# A small tuned reader's span probabilities are not calibrated (on SQuAD any threshold above 0 cut F1 more than
# it avoided wrong answers), so the evidence gate above does the abstaining; a user with a strong reader can
# raise this.
MIN_SPAN_SCORE = 0.0
MODES = ("extractive", "generative")


def _words(text: str) -> set[str]:
    return {w for w in re.findall(r"\w+", text.lower()) if len(w) > 2}


_STOPWORDS = set(
    "the a an and or of to in on at by for with from as is are was were be been being it its this that these those "
    "which who whom what when where why how not no yes but if then than so such their there they them he she his her "
    "we our you your i my me do does did have has had can could would should will shall may might also into about "
    "over under more most other some any each all both only own same very just".split()
)


def ungrounded(answer: str, question: str, passages: list[Passage]) -> str | None:
    """Why a generated answer is not supported by the passages it was given, or None when it is.

    A small LM readily writes a fluent answer the passages do not hold. Two cheap checks catch most of it:
    a number that appears in no passage, or an answer most of whose own content words (beyond the question's)
    appear in no passage. Words are compared by their first five letters, so inflections still match.
    """
    corpus = " ".join(p.text for p in passages).lower()
    for number in re.findall(r"\d+(?:[.,]\d+)*", answer):
        if number not in corpus:
            return f"the answer's number {number} is in no passage"
    known = {w[:5] for w in _words(corpus)} | {w[:5] for w in _words(question)}
    own = [w for w in _words(answer) - _words(question) if w not in _STOPWORDS]
    if len(own) >= 4 and sum(w[:5] not in known for w in own) > len(own) / 2:
        return "most of the answer's words are in no passage"
    return None


def supporting_passage(answer: str, passages: list[Passage]) -> Passage:
    """The passage that shares the most words with the answer (ties go to the better-ranked one)."""
    words = _words(answer)
    return max(passages, key=lambda p: (len(words & _words(p.text)), -passages.index(p)))


def _abstain(question: str, mode: str, passages: list[Passage], confidence: float, notes: list[str]) -> Answer:
    closest = [Citation(p.id, p.path, p.location, " ".join(p.text.split())[:240]) for p in passages[:3]]
    return Answer(question, NOT_FOUND, False, confidence, mode, closest, passages, notes)


def answer_question(
    question: str,
    passages: list[Passage],
    mode: str,
    extractive: ExtractiveReader | None = None,
    llm: CausalLM | None = None,
    min_evidence: float = MIN_EVIDENCE,
    min_span_score: float = MIN_SPAN_SCORE,
) -> Answer:
    evidence = max((p.dense for p in passages if p.dense is not None), default=None)
    if not passages or (evidence is not None and evidence < min_evidence):
        note = "no passage is close enough to the question" if passages else "no passages to read"
        return _abstain(question, mode, passages, float(evidence or 0.0), [note])
    if mode == "extractive":
        assert extractive is not None
        text, score, citations = extractive.answer(question, passages)
        if not text or score < min_span_score:
            return _abstain(question, mode, passages, score, ["the reader found no confident answer span"])
        return Answer(question, text, True, score, mode, citations, passages, [])
    assert llm is not None
    text, citations, notes, said_not_found = generate_answer(llm, question, passages)
    if said_not_found:
        return _abstain(question, mode, passages, float(evidence or 0.0), notes + ["the model found no answer in the passages"])
    reason = ungrounded(text, question, passages)
    if reason:
        return _abstain(question, mode, passages, float(evidence or 0.0), notes + [f"the generated answer was dropped: {reason}"])
    if not citations:
        support = supporting_passage(text, passages)
        notes = notes + ["the model cited no passage; the passage sharing most words with the answer is cited"]
        citations = [Citation(support.id, support.path, support.location, " ".join(support.text.split())[:240])]
    return Answer(question, text, True, float(evidence or 0.0), mode, citations, passages, notes)
