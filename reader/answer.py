"""The /answers use: retrieve passages, read them (extractive or generative), check the answer, cite, or abstain.

An answer is given as found only when it is checked against a passage (``reader.evidence``): a span must be a
slice of its passage, a generated answer must be stated by a sentence of the passages, and that sentence is quoted
verbatim with its offsets. Abstention has three gates:
- evidence: when the best passage's cosine similarity to the question is below ``MIN_EVIDENCE`` the corpus most
  likely does not hold the answer and no reader runs;
- verification: a generated answer that says NOT FOUND (and is sure of it: ``reader.generative.NOT_FOUND_SURE``), that
  runs past the token limit, or that no sentence of the passages states, is dropped;
- confidence: the calibrated probability that the answer is right (``reader.calibration``) below
  ``MIN_CONFIDENCE``.
In every case the answer is "not found in the corpus" with the closest passages, never an invented one.
"""

from __future__ import annotations

from collections.abc import Callable

from sixfold.indexer.chunking import word_window
from sixfold.reader.calibration import Features, calibrated
from sixfold.reader.evidence import MIN_SUPPORT, Quote, content_words, find_support, sentence_at, states, support
from sixfold.reader.extractive import ExtractiveReader
from sixfold.reader.generative import Generated, SentenceScorer, generate_answer
from sixfold.reader.judge import judge_support
from sixfold.reader.llm import LanguageModel
from sixfold.reader.types import Answer, Citation, Passage, not_found_text

# The cosine (all-MiniLM-L6-v2) below which no reader runs. On SQuAD v1.1 dev (bench/squad_eval.py: half of the
# articles indexed) 0.46 separated answerable from absent questions best (median top cosine 0.61 vs 0.33), but
# questions in a user's own words over documentation score lower (bench/folder_qa: answerable questions at 0.43),
# and the verified, calibrated confidence now does the finer abstaining, so the gate only drops the clearly absent.
MIN_EVIDENCE = 0.35
# Below this calibrated probability of being right, sixfold abstains (bench/calibrate_answers.py chose it).
MIN_CONFIDENCE = 0.5
# A small tuned reader's span probabilities are not calibrated (on SQuAD any threshold above 0 cut F1 more than
# it avoided wrong answers), so the evidence gate above does the abstaining; a user with a strong reader can
# raise this.
MIN_SPAN_SCORE = 0.0
MODES = ("extractive", "generative")


def _snippet(passage: Passage, start: int | None = None, end: int | None = None) -> str:
    if start is None or end is None:
        return " ".join(passage.text.split())[:240]
    return word_window(passage.text, start, end, 120)


def _abstain(question: str, mode: str, passages: list[Passage], confidence: float, notes: list[str]) -> Answer:
    closest = [Citation(p.id, p.path, p.location, _snippet(p)) for p in passages[:3]]
    return Answer(question, not_found_text(question), False, confidence, mode, closest, passages, notes)


def quoted_citation(passage: Passage, quote: Quote, start: int | None = None, end: int | None = None) -> Citation:
    """A citation carrying its verbatim quote; the quote is checked against the passage text here."""
    if passage.text[quote.start : quote.end] != quote.text:
        raise AssertionError("a quote must be a verbatim slice of its passage")
    a, b = (start, end) if start is not None and end is not None else (quote.start, quote.end)
    return Citation(
        passage.id, passage.path, passage.location, _snippet(passage, a, b), start, end, quote.text, quote.start, quote.end
    )


def asked_share(question: str, sentence: str) -> float | None:
    """Share of the question's content words (first five letters) in ``sentence``; None for a question without any."""
    asked = {w[:5] for w in content_words(question)}
    if not asked:
        return None
    return len(asked & {w[:5] for w in content_words(sentence)}) / len(asked)


SHORT_ANSWER = 2  # content words: an answer this short ("60%", "1912") is trusted only from a sentence the model cited
MIN_ASKED = 0.6  # ... or from one that holds this share of the question's content words
MIN_JUDGED = 0.6  # ... or from one the model says answers the question (reader.judge) with this probability
MAX_JUDGED = 2  # stating sentences judged at most, in the order shown (each check costs ~1.5 s on a CPU)
# On the folder QA set the check said Yes at 0.81 and 0.76 to two right short answers whose sentences share few of
# the question's words (BC_LINE_LENGTH, Saturday) and at most 0.48 to the short answers of 3 unanswerable questions.

Judge = Callable[[Quote], float | None]


def verify(generated: Generated, question: str, judge: Judge | None = None) -> tuple[Quote | None, float, str | None]:
    """The verbatim sentence supporting a generated answer, its support and, when there is none, why.

    First the sentences the model cited (their words together: an answer may take two). A small model often cites
    the sentence that names the subject rather than the one with the answer, so a longer answer may also come from
    any sentence it was shown, or of the passages, holding most of its words; a short one (a number, a name: easily
    found in some unrelated sentence) only from a shown sentence that states it as a phrase and holds most of the
    question's words, or that ``judge`` (the model's own check, ``reader.judge``) says answers the question.
    ``Quote.exact``: the model cited it."""
    answer, shown = generated.answer, generated.shown
    cited = [shown[i] for i in generated.cited]
    if generated.pointed:
        # The answer is the sentence the model pointed at: stated by it, trivially, so only the check can tell. On the
        # Spanish folder set 5 of 7 such answers were wrong (the check gave two of them 0.50 and 0.55).
        sentence = cited[0]
        quote = Quote(sentence.passage, sentence.start, sentence.end, sentence.text, True)
        judged = judge(quote) if judge is not None else None
        if judged is None or judged < MIN_JUDGED:
            return None, 0.0, "the model only gave a sentence number, and its check did not find the sentence answers"
        return quote, 1.0, None
    if cited:
        together = support(answer, " ".join(s.text for s in cited), question)
        if together >= MIN_SUPPORT:
            best = max(cited, key=lambda s: support(answer, s.text, question))
            return Quote(best.passage, best.start, best.end, best.text, True), together, None
    if len(content_words(answer)) <= SHORT_ANSWER:
        # The model cited the sentence naming the subject, not the one with the answer (common for small models):
        # accepted only from a shown sentence that states the answer and holds most of the question's words.
        # A question in the user's own words shares few words with any one sentence, so the passage (the chunk) the
        # sentence is in may hold them instead.
        stating = [Quote(s.passage, s.start, s.end, s.text, False) for s in shown if states(answer, s.text)]
        for quote in stating:
            for context in (quote.text, generated.used[quote.passage].text):
                share = asked_share(question, context)
                if share is not None and share >= MIN_ASKED:
                    return quote, 1.0, None
        if judge is not None:
            for quote in stating[:MAX_JUDGED]:
                judged = judge(quote)
                if judged is not None and judged >= MIN_JUDGED:
                    return quote, 1.0, None
        return None, 0.0, "no sentence the model cited states its answer"
    scores = [support(answer, s.text, question) for s in shown]
    if scores and max(scores) >= MIN_SUPPORT:
        best = shown[scores.index(max(scores))]
        return Quote(best.passage, best.start, best.end, best.text, False), max(scores), None
    found = find_support(answer, [p.text for p in generated.used], question)
    if found is None:
        return None, 0.0, "no sentence of the passages states the generated answer"
    return found, support(answer, found.text, question), None


def answer_question(
    question: str,
    passages: list[Passage],
    mode: str,
    extractive: ExtractiveReader | None = None,
    llm: LanguageModel | None = None,
    min_evidence: float = MIN_EVIDENCE,
    min_span_score: float = MIN_SPAN_SCORE,
    min_confidence: float = MIN_CONFIDENCE,
    scorer: SentenceScorer | None = None,
) -> Answer:
    """Read ``passages`` for ``question`` and answer, checked and cited, or abstain (see the module docstring).
    ``scorer``: how the generative reader picks the sentences it shows the model (the Engine's embedder)."""
    evidence = max((p.dense for p in passages if p.dense is not None), default=None)
    if not passages or (evidence is not None and evidence < min_evidence):
        note = "no passage is close enough to the question" if passages else "no passages to read"
        return _abstain(question, mode, passages, float(evidence or 0.0), [note])
    if mode == "extractive":
        assert extractive is not None
        text, score, citations = extractive.answer(question, passages)
        if not text or score < min_span_score:
            return _abstain(question, mode, passages, score, ["the reader found no confident answer span"])
        by_id = {p.id: p for p in passages}
        checked = []
        for citation in citations:
            passage = by_id[citation.passage_id]
            start, end = citation.start, citation.end
            if start is None or end is None or passage.text[start:end].strip() != text:
                continue  # a span that is not a slice of its passage is not cited
            a, b = sentence_at(passage.text, start, end)
            checked.append(quoted_citation(passage, Quote(passages.index(passage), a, b, passage.text[a:b], True), start, end))
        if not checked:
            return _abstain(question, mode, passages, score, ["the answer span could not be found in its passage"])
        return Answer(question, text, True, score, mode, checked, passages, [])
    assert llm is not None
    generated = generate_answer(llm, question, passages, scorer)
    notes = list(generated.notes)
    if generated.said_not_found:
        return _abstain(question, mode, passages, 0.0, notes + ["the model found no answer in the passages"])
    if generated.cut:
        # Asked for a short answer, the model copied on past the token limit (a list of links, a run of commands):
        # none of the 3 such replies on the folder QA set and the SQuAD calibration run was right (docs/benchmarks.md).
        return _abstain(question, mode, passages, 0.0, notes + ["the reply was not a short answer: it was dropped"])
    judged: dict[tuple[int, int], float | None] = {}

    def judge(quote: Quote) -> float | None:
        """The model's check of one sentence (``reader.judge``), made once per sentence."""
        key = (quote.passage, quote.start)
        if key not in judged:
            judged[key] = judge_support(llm, question, generated.answer, generated.used[quote.passage], quote.text)
        return judged[key]

    quote, score, why = verify(generated, question, judge)
    if quote is None:
        return _abstain(question, mode, passages, 0.0, notes + [f"the generated answer was dropped: {why}"])
    cited_passage = generated.used[quote.passage]
    features = Features(
        evidence=float(evidence if evidence is not None else cited_passage.score),
        probability=generated.probability,
        support=score,
        cited_sentence=quote.exact,
        cited_rank=passages.index(cited_passage),
        answerable=generated.answerable,
        asked=asked_share(question, quote.text),
        judged=judge(quote),
    )
    confidence = calibrated(features)
    if confidence < min_confidence:
        held = _abstain(
            question,
            mode,
            passages,
            confidence,
            notes + [f"the answer '{generated.answer}' was held back: confidence {confidence:.2f} < {min_confidence}"],
        )
        held.features = features.to_dict()
        return held
    citation = quoted_citation(cited_passage, quote)
    if not quote.exact:
        notes.append("the model cited no sentence that states its answer; the sentence that does is quoted")
    return Answer(question, generated.answer, True, confidence, mode, [citation], passages, notes, features.to_dict())
