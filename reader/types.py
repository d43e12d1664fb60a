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


# A chat reply that abstains: (no answer, the closest passages follow; no answer, and nothing close), by language.
NOT_FOUND_REPLY = (
    "I could not find an answer to that in the indexed documents. The closest passages:",
    "I could not find an answer to that in the indexed documents, and no passage is close to the question.",
)
NOT_FOUND_REPLY_BY_LANGUAGE = {
    "es": (
        "No encontré la respuesta en los documentos indexados. Los pasajes más cercanos:",
        "No encontré la respuesta en los documentos indexados, y ningún pasaje se acerca a la pregunta.",
    ),
    "fr": (
        "Je n'ai pas trouvé de réponse dans les documents indexés. Les passages les plus proches :",
        "Je n'ai pas trouvé de réponse dans les documents indexés, et aucun passage n'est proche de la question.",
    ),
    "de": (
        "In den indexierten Dokumenten habe ich keine Antwort darauf gefunden. Die nächstliegenden Passagen:",
        "In den indexierten Dokumenten habe ich keine Antwort darauf gefunden, und keine Passage liegt nahe an der Frage.",
    ),
    "pt": (
        "Não encontrei uma resposta nos documentos indexados. As passagens mais próximas:",
        "Não encontrei uma resposta nos documentos indexados, e nenhuma passagem se aproxima da pergunta.",
    ),
    "it": (
        "Non ho trovato una risposta nei documenti indicizzati. I passaggi più vicini:",
        "Non ho trovato una risposta nei documenti indicizzati, e nessun passaggio è vicino alla domanda.",
    ),
    "nl": (
        "Ik heb in de geïndexeerde documenten geen antwoord gevonden. De dichtstbijzijnde passages:",
        "Ik heb in de geïndexeerde documenten geen antwoord gevonden, en geen passage ligt dicht bij de vraag.",
    ),
}


def _question_language(question: str) -> str:
    from sixfold.indexer.language import detect

    return detect(question).language


def not_found_text(question: str) -> str:
    """``NOT_FOUND`` in the question's language when it is one of ``NOT_FOUND_BY_LANGUAGE``, else in English."""
    return NOT_FOUND_BY_LANGUAGE.get(_question_language(question), NOT_FOUND)


def not_found_reply(question: str, closest: bool) -> str:
    """The sentence a chat reply abstains with, in the question's language (English when it has none of its own):
    the one that introduces the closest passages, or the one that says there are none."""
    replies = NOT_FOUND_REPLY_BY_LANGUAGE.get(_question_language(question), NOT_FOUND_REPLY)
    return replies[0] if closest else replies[1]


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
    # What decided the label: "nearest examples (MODEL)", "classifier@N" (tuned), "zero-shot (MODEL)".
    decided_by: str = ""

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
