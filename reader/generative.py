"""Generative reader: an instruction LM answers from numbered *sentences* of the passages and cites them.

On a 2-core CPU a 1.5B model reads about 40 prompt tokens a second, so five whole passages (1,000+ tokens) cost
half a minute before the first word. The reader therefore gives the model only the sentences of the passages that
are closest to the question (``select_sentences``: by the embedder's cosine where one is given, else by shared
words; ``SENTENCE_BUDGET`` tokens in all), numbered and grouped under their file, in the passages' order. The
model answers in a few words and cites sentence numbers (``ANSWER: ... [3]``) or replies NOT FOUND; a cited
sentence is then a verbatim quote by construction, and ``reader.answer`` checks that it states the answer.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sixfold.reader.evidence import content_words, sentences
from sixfold.reader.llm import LanguageModel
from sixfold.reader.types import Completion, Passage

if TYPE_CHECKING:
    from sixfold.indexer.embedding import Embedder

SYSTEM = (
    "You answer questions using only the numbered sentences given. Reply with a short answer, in the language of "
    "the question, followed by the numbers of the sentences that state it, in exactly this form:\n"
    "ANSWER: <short answer> [n]\n"
    "If the sentences do not contain the answer, reply exactly: NOT FOUND"
)
# The same instructions when the question or the sentences are not English. Without the clause, Qwen2.5-Coder-1.5B
# replied NOT FOUND to Spanish questions whose answer a Spanish sentence stated word for word (tests/test_languages.py);
# English prompts keep SYSTEM byte for byte, so the English calibration (reader.calibration) still holds.
SYSTEM_ANY_LANGUAGE = SYSTEM.replace(
    "using only the numbered sentences given.",
    "using only the numbered sentences given; the sentences and the question may be in any language.",
)
# The model's first token chooses between ANSWER and NOT FOUND, and Qwen2.5-Coder-1.5B chooses NOT FOUND for many
# questions whose answer it was shown (bench/folder_qa: for 7 of the 12 answerable questions it said NOT FOUND to, the
# answer was in the sentences it read, at P(NOT) near 0.5). So NOT FOUND is taken only when the model is this sure of
# it (its first token's probability); otherwise it is asked again with its reply begun as "ANSWER:", and how sure it
# was of an answer (``Generated.answerable``) goes into the confidence (``reader.calibration``), which decides whether
# to abstain.
NOT_FOUND_SURE = 0.95
FORCED = "ANSWER:"
SENTENCE_BUDGET = 384  # prompt tokens of sentences (about 10 s of prompt reading for the 1.5B model on 2 cores)
MAX_SENTENCE_TOKENS = 96  # a longer "sentence" (a list, a table row run) is cut to this many tokens
_CITE = re.compile(r"\[(\d+(?:\s*[,;]\s*\d+)*)\]")  # [3], and the lists a model also writes: [1,2], [1; 4]
_ANSWER = re.compile(r"ANSWER\s*:\s*(.+)", re.IGNORECASE | re.DOTALL)
_PREAMBLE = re.compile(r"^(the answer is|answer)\s*:?\s*", re.IGNORECASE)

# (question, sentences) -> one score per sentence (higher: closer). The Engine passes its embedder's cosine.
SentenceScorer = Callable[[str, list[str]], list[float]]


def cosine_scorer(embedder: Embedder) -> SentenceScorer:
    """The scorer ``ask`` uses: each sentence's cosine to the question under ``embedder`` (vectors are normalised)."""

    def score(question: str, texts: list[str]) -> list[float]:
        vectors = embedder.encode([question, *texts])
        return [float(v) for v in vectors[1:] @ vectors[0]]

    return score


@dataclass(frozen=True)
class Sentence:
    """A sentence of a passage: ``passage.text[start:end]``; ``passage`` indexes the passages given."""

    passage: int
    start: int
    end: int
    text: str


@dataclass
class Generated:
    """What the model wrote, parsed: the answer and the sentences it cited (indexes into ``shown``)."""

    answer: str
    used: list[Passage]
    shown: list[Sentence] = field(default_factory=list)
    cited: list[int] = field(default_factory=list)
    said_not_found: bool = False
    notes: list[str] = field(default_factory=list)
    probability: float | None = None  # geometric mean of the answer tokens' probabilities (llama.cpp)
    raw: str = ""
    # The model's probability of answering rather than replying NOT FOUND, at its first token (llama.cpp; None
    # where the runtime gives no token probabilities).
    answerable: float | None = None
    # The answer was asked for with the reply begun as "ANSWER:": the model first said NOT FOUND, unsure
    # (NOT_FOUND_SURE), or replied in another form.
    forced: bool = False
    cut: bool = False  # the reply ran to the token limit: a copied list or command run, not a short answer
    # The reply was only a sentence number ("ANSWER: [4]"); the answer is that sentence (``reader.answer.verify``
    # takes it only when the model's own check says the sentence answers the question).
    pointed: bool = False


def lexical_scores(question: str, texts: list[str]) -> list[float]:
    """Share of the question's content words (first five letters) in each text: the scorer without an embedder."""
    wanted = {w[:5] for w in content_words(question)}
    if not wanted:
        return [0.0] * len(texts)
    return [len(wanted & {w[:5] for w in content_words(t)}) / len(wanted) for t in texts]


def select_sentences(
    llm: LanguageModel,
    question: str,
    passages: list[Passage],
    scorer: SentenceScorer | None = None,
    budget: int = SENTENCE_BUDGET,
) -> list[Sentence]:
    """The sentences closest to the question within ``budget`` tokens, in passage order (each sentence once)."""
    candidates: list[Sentence] = []
    seen: set[str] = set()
    for index, passage in enumerate(passages):
        for a, b in _joined_terms(passage.text):
            key = " ".join(passage.text[a:b].lower().split())
            if len(key.split()) < 3 or key.startswith("#") or key in seen:
                continue  # a heading or a fragment: it would take a number and state nothing
            seen.add(key)
            candidates.append(Sentence(index, a, b, passage.text[a:b]))
    if not candidates:
        return []
    scores = (scorer or lexical_scores)(question, [" ".join(s.text.split()) for s in candidates])
    # A small prior for the passage's rank, so that ties go to the passage retrieval ranked first.
    ranked = sorted(range(len(candidates)), key=lambda i: -(scores[i] - 0.01 * candidates[i].passage))
    chosen, left = [], budget
    for i in ranked:
        tokens = min(llm.count_tokens(candidates[i].text), MAX_SENTENCE_TOKENS) + 4
        if tokens > left:
            continue
        chosen.append(i)
        left -= tokens
        if left < 16:
            break
    return [candidates[i] for i in sorted(chosen)]


def _joined_terms(text: str) -> list[tuple[int, int]]:
    """``sentences(text)``, with a short line that is not a heading (a term: "BC_LINE_LENGTH", "-v, --verbose")
    joined to the sentence after it, its definition; alone it would be dropped as a fragment, and the definition
    alone does not name what it defines."""
    spans: list[tuple[int, int]] = []
    pending: int | None = None
    for a, b in sentences(text):
        piece = text[a:b]
        if len(piece.split()) < 3 and not piece.lstrip().startswith("#"):
            pending = a  # a fragment after a fragment: the later one is the term
            continue
        spans.append((a if pending is None else pending, b))
        pending = None
    return spans


def build_prompt(
    llm: LanguageModel, question: str, passages: list[Passage], scorer: SentenceScorer | None = None
) -> tuple[str, list[Sentence], list[str]]:
    """The chat prompt, the sentences it shows (numbered from 1) and notes."""
    shown = select_sentences(llm, question, passages, scorer)
    blocks: list[str] = []
    current = None
    for number, sentence in enumerate(shown, 1):
        if sentence.passage != current:
            current = sentence.passage
            passage = passages[current]
            blocks.append(f"\nFrom {prompt_source(passage)}:")
        text = " ".join(sentence.text.split())
        if llm.count_tokens(text) > MAX_SENTENCE_TOKENS:
            text = llm.truncate(text, MAX_SENTENCE_TOKENS) + " …"
        blocks.append(f"[{number}] {text}")
    notes = [] if shown else ["the passages hold no sentence to read"]
    user = "Sentences:" + "\n".join(blocks) + f"\n\nQuestion: {question}"
    return llm.chat_prompt(_system(question, shown), user), shown, notes


def prompt_source(passage: Passage) -> str:
    """Where a passage is from, as a prompt gives it: file, page and heading, without the character range (the model
    copied "chars 0-178" into an answer, and the range tells it nothing)."""
    place = [part for part in passage.location.split(", ") if part and not part.startswith("chars ")]
    return ", ".join(part for part in [passage.path, *place] if part)


def _system(question: str, shown: list[Sentence]) -> str:
    """``SYSTEM`` for an English question over English sentences, else ``SYSTEM_ANY_LANGUAGE``."""
    from sixfold.indexer.language import UNDETERMINED, detect

    english = (UNDETERMINED, "en")
    if detect(question).language in english and detect(" ".join(s.text for s in shown)).language in english:
        return SYSTEM
    return SYSTEM_ANY_LANGUAGE


def _answer_probability(probabilities: list[float] | None, raw: str, answer_at: int) -> float | None:
    """Geometric mean probability of the answer's tokens (those after ``answer_at`` characters of ``raw``, by
    share of characters, since the pieces are not kept per token)."""
    if not probabilities:
        return None
    first = int(len(probabilities) * answer_at / max(len(raw), 1))
    chosen = [p for p in probabilities[first:] if p > 0] or [p for p in probabilities if p > 0]
    if not chosen:
        return 0.0
    return math.exp(sum(math.log(p) for p in chosen) / len(chosen))


def parse(raw: str, shown: int) -> tuple[str, list[int], int]:
    """(answer, cited sentence indexes, where the answer starts in ``raw``) from the model's reply."""
    match = _ANSWER.search(raw)
    answer, at = (match.group(1), match.start(1)) if match else (raw, 0)
    answer = answer.strip().split("\n")[0].strip()
    numbers = [int(n) for group in _CITE.findall(answer) for n in re.split(r"\s*[,;]\s*", group)]
    cited = list(dict.fromkeys(n - 1 for n in numbers if 1 <= n <= shown))
    answer = " ".join(_CITE.sub("", answer).split())
    answer = re.sub(r"\s+([.,;:])", r"\1", answer)
    answer = _PREAMBLE.sub("", answer).strip().strip('"').strip().rstrip(",;:").strip()
    whole_code = re.fullmatch(r"`([^`]+)`\.?", answer)  # "`openssl passwd`": the answer is the code, not its markup
    if whole_code:
        answer = whole_code.group(1).strip()
    answer = re.sub(r"([,;])\1+", r"\1", answer)
    return answer, cited, at


def _says_not_found(raw: str) -> bool:
    return not raw or "NOT FOUND" in raw.upper()[:40]


def first_token(completion: Completion, starts: str) -> float | None:
    """The probability of the reply's first token when the reply begins with ``starts`` (the token is its start)."""
    probabilities = completion.token_probabilities
    if not probabilities or not completion.text.lstrip().upper().startswith(starts):
        return None
    return probabilities[0]


def generate_answer(
    llm: LanguageModel,
    question: str,
    passages: list[Passage],
    scorer: SentenceScorer | None = None,
    max_tokens: int = 48,
    not_found_sure: float = NOT_FOUND_SURE,
) -> Generated:
    """Ask the model, parse its reply (``parse``); nothing is checked here (``reader.answer`` does). A NOT FOUND the
    model is less than ``not_found_sure`` of is followed by its answer, asked for with the reply begun as
    "ANSWER:" (the prompt is read once: llama.cpp keeps it in its cache)."""
    prompt, shown, notes = build_prompt(llm, question, passages, scorer)
    if not shown:
        return Generated("", passages, shown, said_not_found=True, notes=notes)
    stop = ["\n\n", "<|im_end|>"]
    completion = llm.complete(prompt, max_tokens=max_tokens, temperature=0.0, stop=stop)
    raw = completion.text.strip()
    forced = False
    answerable: float | None = None
    if _says_not_found(raw):
        sure = first_token(completion, "NOT")
        if sure is None or sure >= not_found_sure:
            return Generated("", passages, shown, said_not_found=True, notes=notes, raw=raw, answerable=complement(sure))
        answerable, forced = complement(sure), True
        notes.append(f"the model first replied NOT FOUND (probability {sure:.2f}); its answer was asked for")
    elif not _ANSWER.search(raw):
        # Not the form asked for ("Tk: [1]", a copied sentence): asked again with the reply begun as "ANSWER:".
        answerable, forced = first_token(completion, "ANS"), True
        notes.append("the model's reply was not in the form asked for; its answer was asked for")
    else:
        answerable = first_token(completion, "ANS")
    if forced:
        completion = llm.complete(prompt + FORCED, max_tokens=max_tokens, temperature=0.0, stop=stop)
        raw = FORCED + completion.text.rstrip()
    answer, cited, at = parse(raw, len(shown))
    pointed = False
    if not answer and cited:
        # "ANSWER: [4] [6]": the model pointed at the sentence instead of writing the answer (on the folder QA set, 3
        # of the replies taken for NOT FOUND: a CMake option line, pip's --break-system-packages sentence, the NTP
        # servers' sentence). The first sentence it cited, as written, is the answer if the model's check agrees.
        answer, pointed = " ".join(shown[cited[0]].text.split()), True
        notes.append("the model replied with a sentence number only; that sentence is the answer")
    if not answer or "NOT FOUND" in answer.upper():
        return Generated("", passages, shown, said_not_found=True, notes=notes, raw=raw, answerable=answerable)
    cut = completion.finish_reason == "length"
    if cut:
        notes.append("the model's reply was cut at the token limit")
    offset = len(FORCED) if forced else 0  # the forced prefix is not among the generated tokens
    probability = _answer_probability(completion.token_probabilities, raw[offset:], max(at - offset, 0))
    return Generated(answer, passages, shown, cited, False, notes, probability, raw, answerable, forced, cut, pointed)


def complement(probability: float | None) -> float | None:
    return None if probability is None else 1.0 - probability
