"""Typed results of the reader: answers with citations, labels with the examples that decided them, completions."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

NOT_FOUND = "not found in the corpus"
# What an abstention says in the question's language (the languages the multilingual embedder reads most often).
NOT_FOUND_BY_LANGUAGE = {
    "es": "no se encuentra en el corpus",
    "fr": "introuvable dans le corpus",
    "de": "nicht im Korpus gefunden",
    "pt": "não encontrado no corpus",
    "it": "non trovato nel corpus",
    "nl": "niet gevonden in het corpus",
}


def not_found_text(question: str) -> str:
    """``NOT_FOUND`` in the question's language when it is one of ``NOT_FOUND_BY_LANGUAGE``, else in English."""
    from sixfold.indexer.language import detect

    return NOT_FOUND_BY_LANGUAGE.get(detect(question).language, NOT_FOUND)


@dataclass
class Passage:
    """A piece of text the reader may read and cite (a retrieved chunk, or a chunk of a given document)."""

    id: int
    text: str
    path: str
    location: str = ""
    score: float = 0.0  # retrieval score (cosine for dense)
    dense: float | None = None


@dataclass
class Citation:
    passage_id: int
    path: str
    location: str
    snippet: str
    start: int | None = None  # answer span inside the passage text, when extractive
    end: int | None = None
    # The sentence that states the answer, verbatim: quote == passage text[quote_start:quote_end] (checked).
    quote: str | None = None
    quote_start: int | None = None
    quote_end: int | None = None


@dataclass
class Answer:
    question: str
    answer: str
    found: bool
    confidence: float
    mode: str
    citations: list[Citation] = field(default_factory=list)
    passages: list[Passage] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # e.g. which passages were cut to fit the model window
    features: dict | None = None  # what the confidence was computed from (reader.calibration.Features)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class LabeledExample:
    text: str
    label: str
    similarity: float = 0.0
    line: int | None = None


@dataclass
class Label:
    query: str
    label: str
    score: float
    scores: dict[str, float]
    examples: list[LabeledExample]

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class Completion:
    prompt: str
    text: str
    finish_reason: str  # "stop" (stop sequence or end of text) or "length"
    prompt_tokens: int
    completion_tokens: int
    model: str
    # The probability the model gave each token it generated (llama.cpp runtime; None where not recorded).
    token_probabilities: list[float] | None = None

    def to_dict(self) -> dict:
        return asdict(self)
