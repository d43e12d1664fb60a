"""Which language a text is in: per document when indexing (stored on each chunk), per query when searching.

py3langid (a maintained fork of langid.py: a naive-Bayes byte n-gram model, 97 languages, shipped in the wheel as a
4.6 MB file, numpy only, no download) is restricted to the languages sixfold treats specially: those with a BM25
stemmer and those the multilingual embedder reads. Restricting helps short texts, where langid's many rare
languages otherwise win on a handful of bytes.

A text too short or too mixed to tell gets ``UNDETERMINED``; its chunks are searched with the plain analyser.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass

UNDETERMINED = "und"
# The stemmer languages of the lexical index and the 16 of USE multilingual v3 (zh-tw is zh for langid).
LANGUAGES = (
    "ar", "da", "de", "el", "en", "es", "fi", "fr", "hu", "it", "ja", "ko", "nl", "no", "pl", "pt", "ro", "ru", "sv",
    "ta", "th", "tr", "zh",
)  # fmt: skip
DOCUMENT_SAMPLE = 6000  # characters read from a document: its start, middle and end
MIN_LETTERS = 12  # fewer letters than this: no guess
MIN_PROBABILITY = 0.5  # below this the guess is not trusted

_LETTERS = re.compile(r"[^\W\d_]", re.UNICODE)
_lock = threading.Lock()
_identifier = None


@dataclass(frozen=True)
class Detection:
    language: str  # ISO 639-1 code, or UNDETERMINED
    probability: float


def _model():
    global _identifier
    with _lock:
        if _identifier is None:
            from py3langid.langid import MODEL_FILE, LanguageIdentifier

            identifier = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
            identifier.set_languages(list(LANGUAGES))
            _identifier = identifier
        return _identifier


def _sample(text: str, size: int) -> str:
    """Up to ``size`` characters of ``text``: its start, middle and end (a preface, a body, an index)."""
    if len(text) <= size:
        return text
    third = size // 3
    middle = len(text) // 2 - third // 2
    return " ".join((text[:third], text[middle : middle + third], text[-third:]))


def detect(text: str, size: int = DOCUMENT_SAMPLE) -> Detection:
    """The language of ``text`` (a document or a query), or ``UNDETERMINED`` when it cannot be told."""
    sample = _sample(text or "", size)
    if len(_LETTERS.findall(sample[:2000])) < MIN_LETTERS:
        return Detection(UNDETERMINED, 0.0)
    identifier = _model()
    with _lock:  # the identifier swaps arrays in set_languages; classify itself is read-only but cheap to guard
        language, probability = identifier.classify(sample)
    if probability < MIN_PROBABILITY:
        return Detection(UNDETERMINED, float(probability))
    return Detection(str(language), float(probability))


def detect_query(query: str, index_languages: list[str] | tuple[str, ...] = ()) -> str:
    """A query's language. Queries are short, so an uncertain guess falls back to the index's one language (when it
    holds only one) rather than to ``UNDETERMINED``."""
    found = detect(query)
    if found.language != UNDETERMINED:
        return found.language
    known = [lang for lang in index_languages if lang != UNDETERMINED]
    return known[0] if len(known) == 1 else UNDETERMINED
