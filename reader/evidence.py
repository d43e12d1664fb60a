"""Checking an answer against its passages: the sentence that supports it is found verbatim, or it is not given.

The quote a user reads is always a verbatim slice of the cited passage (``Quote.start``/``end`` into its text),
never words a model wrote. An answer is supported when its content words (compared by their first five letters, so
inflections match) and all its numbers are in that sentence.

Hand-written: sentence splitting here is a regex on end punctuation and line breaks. NLTK's punkt and similar need
data downloads or are English-only, and a sentence that is cut wrongly only makes a quote longer or shorter.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

# End punctuation then space (not after an initial "A." or a common abbreviation), a blank line, or a list item.
_SENTENCE_END = re.compile(
    r"(?<!\b[A-Z]\.)(?<!\be\.g\.)(?<!\bi\.e\.)(?<!\betc\.)(?<!\bvs\.)(?<!\bDr\.)(?<!\bMr\.)(?<!\bcf\.)(?<!\bNo\.)"
    r"(?<=[.!?。！？])[\"'»”)\]]*\s+|\n\s*\n|\n(?=\s*[-*•#\d])"
)
_WORD = re.compile(r"\w+", re.UNICODE)
_NUMBER = re.compile(r"\d+(?:[.,:]\d+)*")
MIN_SUPPORT = 0.75  # share of the answer's content words that its sentence must hold
MIN_SQUASHED = 6  # letters and digits an answer needs before it is matched with its spaces and punctuation dropped
_CODE_SPAN = re.compile(r"`([^`\n]+)`")

# Short function words of the languages sixfold is used in most; they carry no support.
_STOPWORDS = set(
    "the a an and or of to in on at by for with from as is are was were be been being it its this that these those "
    "which who whom what when where why how not no yes but if then than so such their there they them he she his her "
    "we our you your i my me do does did have has had can could would should will shall may might also into about "
    "over under more most other some any each all both only own same very just "
    "el la los las un una unos unas y o de del en con por para que se es son al lo su sus como más pero sin sobre "
    "le les des du et ou est une dans pour sur pas au aux ce der die das und oder ist ein eine mit von zu den dem".split()
)


@dataclass(frozen=True)
class Quote:
    """A verbatim sentence of a passage: ``text == passage.text[start:end]``."""

    passage: int  # index into the passages list given
    start: int
    end: int
    text: str
    exact: bool  # the model cited this sentence itself


def _fold(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).lower()
    return " ".join(_WORD.findall(text))


def content_words(text: str) -> list[str]:
    """The words that carry meaning, lower-cased (stop words and one-letter words dropped)."""
    return [w for w in _WORD.findall(unicodedata.normalize("NFKC", text).lower()) if len(w) > 1 and w not in _STOPWORDS]


def sentences(text: str) -> list[tuple[int, int]]:
    """(start, end) of each sentence of ``text``, whitespace trimmed."""
    spans, start = [], 0
    for match in _SENTENCE_END.finditer(text):
        spans.append((start, match.start()))
        start = match.end()
    spans.append((start, len(text)))
    out = []
    for a, b in spans:
        while a < b and text[a].isspace():
            a += 1
        while b > a and text[b - 1].isspace():
            b -= 1
        if b > a:
            out.append((a, b))
    return out


def sentence_at(text: str, start: int, end: int) -> tuple[int, int]:
    """The sentence(s) of ``text`` covering the span [start, end)."""
    covering = [(a, b) for a, b in sentences(text) if b > start and a < end]
    if not covering:
        return start, end
    return covering[0][0], covering[-1][1]


def support(answer: str, sentence: str, question: str = "") -> float:
    """How much of ``answer`` the ``sentence`` states: the share of the answer's content words in it (0 when a
    number of the answer is missing from it).

    Words the answer repeats from ``question`` are not counted (a small model restates the question: "To expand
    namespaces, pass process_namespaces=True"; what needs support is what it adds), unless that leaves none. An
    answer whose code spans (`--yaml-output`) are all stated in the sentence is supported whatever its other words,
    and so is one whose letters and digits appear in the sentence run together ("RFC 8878" in "RFC8878")."""
    folded = _fold(sentence)
    for number in _NUMBER.findall(answer):
        if _fold(number) not in folded:
            return 0.0
    squashed = _squash(answer)
    if len(squashed) >= MIN_SQUASHED and squashed in _squash(sentence):
        return 1.0
    spans = [span for span in _CODE_SPAN.findall(answer) if span.strip()]
    if spans and all(states(span, sentence) for span in spans):
        return 1.0
    words = content_words(answer)
    if not words:
        return 1.0 if _fold(answer) and _fold(answer) in folded else 0.0
    asked = {w[:5] for w in content_words(question)}
    words = [w for w in words if w[:5] not in asked] or words
    have = {w[:5] for w in content_words(sentence)}
    return sum(w[:5] in have for w in words) / len(words)


def _squash(text: str) -> str:
    """Letters and digits only, lower-cased: "RFC 8878" and "RFC8878" alike."""
    return "".join(ch for ch in unicodedata.normalize("NFKC", text).lower() if ch.isalnum())


def states(answer: str, sentence: str) -> bool:
    """The stricter check for a sentence the model did not cite: the answer appears in it as a whole phrase (case
    and spacing aside), not as scattered words or inside a number, so "0" is not "found" in "16.0 units"."""
    flat = " ".join(unicodedata.normalize("NFKC", answer).lower().split()).strip(" .")
    if not flat:
        return False
    text = " ".join(unicodedata.normalize("NFKC", sentence).lower().split())
    return re.search(rf"(?<![\w.,]){re.escape(flat)}(?![\w]|[.,]\d)", text) is not None


def find_support(answer: str, texts: list[str], question: str = "") -> Quote | None:
    """The sentence among ``texts`` that best supports ``answer`` (the first, among equals); None when no sentence
    reaches ``MIN_SUPPORT``."""
    best: tuple[float, int, int, int] | None = None
    for index, text in enumerate(texts):
        for a, b in sentences(text):
            score = support(answer, text[a:b], question)
            if score >= MIN_SUPPORT and (best is None or score > best[0]):
                best = (score, index, a, b)
    if best is None:
        return None
    _, index, a, b = best
    return Quote(index, a, b, texts[index][a:b], exact=False)
