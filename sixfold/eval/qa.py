"""``sixfold eval qa``: SQuAD v1.1 EM/F1 (``metrics``, the official normalisation), reading the gold paragraph with
the extractive reader, or open-book: every paragraph indexed with ``Engine.index``, answers from retrieved passages.

Folder QA sets (``eval_folder_qa``): questions about a real folder asked through ``Engine.ask``, scored on what a
user sees: correct with the right file cited, abstained when the folder does not answer, wrong and confident,
calibration of the confidence, latency."""

from __future__ import annotations

import math
import random
import re
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from sixfold.core import config
from sixfold.core.errors import SixfoldError
from sixfold.eval.datasets import FolderQuestion, load_folder_questions
from sixfold.eval.reports import QAReport, _Report
from sixfold.reader.metrics import exact_match, f1_score, normalize_answer

if TYPE_CHECKING:
    from sixfold.engine import Engine
    from sixfold.reader.extractive import ExtractiveReader
    from sixfold.reader.types import Answer
    from sixfold.tuner.data import QAExample


@dataclass
class _Tally:
    em: list[float] = field(default_factory=list)
    f1: list[float] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    recall: list[float] = field(default_factory=list)
    found: int = 0

    def add(self, text: str, found: bool, gold: list[str], seconds: float) -> None:
        self.em.append(exact_match(text, gold))
        self.f1.append(f1_score(text, gold))
        self.seconds.append(seconds)
        self.found += found


def _paragraph_corpus(examples: list[QAExample], folder: Path) -> dict[str, str]:
    """Each distinct paragraph as one text file in ``folder`` (written once); returns paragraph -> file name."""
    folder.mkdir(parents=True, exist_ok=True)
    paths: dict[str, str] = {}
    for e in examples:
        if e.context not in paths:
            paths[e.context] = f"p{len(paths):05d}.txt"
            if not (folder / paths[e.context]).is_file():
                (folder / paths[e.context]).write_text(e.context, encoding="utf-8")
    return paths


def _open_book(engine: Engine, examples: list[QAExample], paths: dict[str, str], k: int, mode: str, extractive) -> _Tally:
    from sixfold.reader.answer import answer_question

    tally = _Tally()
    for e in examples:
        t = time.perf_counter()
        passages = engine.passages(e.question, k)
        tally.recall.append(float(paths[e.context] in [p.path for p in passages]))
        if mode == "extractive":
            answer = answer_question(e.question, passages, "extractive", extractive=extractive)
        else:
            answer = engine.ask(e.question, k, mode="generative")
        tally.add(answer.answer if answer.found else "", answer.found, [a["text"] for a in e.answers], time.perf_counter() - t)
    return tally


def _gold_paragraph(examples: list[QAExample], extractive: ExtractiveReader | None, generator: str | None = None) -> _Tally:
    """Each question read with its own paragraph as the only passage: by the extractive reader, or by the language
    model ``generator`` through ``answer_question`` as ``ask`` reads a passage: the paragraph's cosine to the question
    under the English embedder is its evidence (a feature of the confidence; the gate that drops distant passages is
    off, since the paragraph is given) and that embedder picks the sentences shown."""
    from sixfold.reader.types import Passage

    tally = _Tally()
    read = _language_model_reader(generator) if extractive is None else None
    for e in examples:
        t = time.perf_counter()
        if read is None:
            assert extractive is not None
            text, _score, _citations = extractive.answer(e.question, [Passage(0, e.context, "gold")])
            found = bool(text)
        else:
            answer = read(e.question, e.context)
            text, found = (answer.answer if answer.found else ""), answer.found
        tally.add(text, found, [a["text"] for a in e.answers], time.perf_counter() - t)
    return tally


def _language_model_reader(generator: str | None) -> Callable[[str, str], Answer]:
    """(question, paragraph) -> the generative reader's checked answer from that paragraph alone."""
    from sixfold.core.models import DEFAULT_EMBEDDER
    from sixfold.indexer.embedding import load_embedder
    from sixfold.reader.answer import answer_question
    from sixfold.reader.generative import cosine_scorer
    from sixfold.reader.llm import load_llm
    from sixfold.reader.types import Passage

    assert generator is not None  # eval_qa passes one in generative mode
    llm, scorer = load_llm(generator), cosine_scorer(load_embedder(DEFAULT_EMBEDDER))

    def read(question: str, paragraph: str) -> Answer:
        cosine = scorer(question, [paragraph])[0]
        passage = Passage(0, paragraph, "gold", score=cosine, dense=cosine)
        return answer_question(question, [passage], "generative", llm=llm, min_evidence=0.0, scorer=scorer)

    return read


def eval_qa(
    squad: str | Path,
    *,
    reader: str | None = None,
    open_book: bool = False,
    index_dir: str | Path | None = None,
    limit: int | None = None,
    k: int = 5,
    seed: int = 0,
    mode: str = "extractive",
) -> QAReport:
    """SQuAD EM/F1: with the gold paragraph (extractive), or open-book over all paragraphs indexed with Engine.index."""
    from sixfold.engine import Engine, base_generator
    from sixfold.reader.extractive import load_extractive
    from sixfold.tuner.data import load_qa_file

    if mode not in ("extractive", "generative"):
        raise SixfoldError(f"unknown QA mode '{mode}' (choose from extractive, generative)")
    everything = load_qa_file(squad)
    examples = random.Random(seed).sample(everything, min(limit, len(everything))) if limit else everything
    reader = reader or config.default_reader()
    extractive: ExtractiveReader | None = None
    if mode == "extractive":
        if not reader:
            raise SixfoldError(
                "eval qa needs --reader FOLDER or $SIXFOLD_READER (an extractive QA model; none ships with sixfold: "
                "`sixfold tune reader` makes one)"
            )
        extractive = load_extractive(reader)
    if open_book:
        if index_dir is None:
            raise SixfoldError("open-book eval needs an index folder")
        paths = _paragraph_corpus(everything, Path(index_dir).parent / f"{Path(index_dir).name}-corpus")
        engine = Engine.open(index_dir)
        engine.index(Path(index_dir).parent / f"{Path(index_dir).name}-corpus")
        tally = _open_book(engine, examples, paths, k, mode, extractive)
    else:
        tally = _gold_paragraph(examples, extractive, base_generator() if mode == "generative" else None)
    return QAReport(
        squad=str(squad),
        questions=len(examples),
        open_book=open_book,
        mode=mode,
        em=100 * statistics.mean(tally.em),
        f1=100 * statistics.mean(tally.f1),
        answered_pct=100 * tally.found / len(examples),
        p50_s=sorted(tally.seconds)[len(tally.seconds) // 2],
        k=k,
        recall=100 * statistics.mean(tally.recall) if tally.recall else None,
    )


# ---- folder QA sets: questions about a real folder, asked through the Engine as ``sixfold ask`` does -------------
CONFIDENT = 0.8  # issue 13: an answer shown with confidence >= 0.8 must be right; a wrong one above it is counted
BINS = 10  # reliability bins of width 0.1
OUTCOMES = {
    "right": "correct, the right source cited",
    "wrong_source": "correct, but no cited passage is from its source",
    "wrong": "answered wrongly",
    "missed": "abstained, though the folder answers it",
    "abstained": "abstained (unanswerable)",
    "answered": "answered (unanswerable)",
}


def _holds(tokens: list[str], wanted: list[str]) -> bool:
    n = len(wanted)
    return any(tokens[i : i + n] == wanted for i in range(len(tokens) - n + 1))


def answer_correct(text: str, answers: list[str], regex: str | None = None) -> bool:
    """Whether an answer matches: ``regex`` found in it (case-insensitive), or one accepted answer equal to it or
    contained in it as whole words, after SQuAD normalisation (``reader.metrics``), or as written (so ``yaml.safe_load``
    is found in ``yaml.safe_load(stream)``, which normalises to one other word)."""
    if regex is not None and re.search(regex, text, re.IGNORECASE):
        return True
    said, lowered = normalize_answer(text).split(), text.lower()
    for accepted in answers:
        wanted = normalize_answer(accepted).split()
        if wanted and _holds(said, wanted):
            return True
        if re.search(rf"(?<![0-9a-z]){re.escape(accepted.lower().strip())}(?![0-9a-z])", lowered):
            return True
    return False


def _percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (p50 of an even count is the lower middle)."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)] if ordered else 0.0


@dataclass
class ReliabilityBin:
    low: float
    high: float
    count: int
    confidence: float | None  # mean confidence of the answers in the bin
    accuracy: float | None  # fraction of them right


@dataclass
class Calibration:
    """Confidence of the answers given (not abstentions) against whether each was right (correct and its source
    cited): reliability bins, expected calibration error, Brier score, and how often a confident answer is right."""

    answers: int
    ece: float | None
    brier: float | None
    bins: list[ReliabilityBin]
    confident_answers: int  # answers given with confidence >= CONFIDENT
    confident_right_pct: float | None


def calibration(confidences: list[float], right: list[bool], bins: int = BINS, confident: float = CONFIDENT) -> Calibration:
    """Reliability of ``confidences`` (clamped to [0, 1]) against ``right``: ``bins`` equal-width bins, ECE (the
    count-weighted mean gap between a bin's accuracy and its mean confidence) and the Brier score."""
    pairs = [(min(1.0, max(0.0, c)), bool(r)) for c, r in zip(confidences, right, strict=True)]
    grouped: list[list[tuple[float, bool]]] = [[] for _ in range(bins)]
    for c, r in pairs:
        grouped[min(int(c * bins), bins - 1)].append((c, r))
    table = [
        ReliabilityBin(
            i / bins,
            (i + 1) / bins,
            len(g),
            statistics.mean(c for c, _ in g) if g else None,
            statistics.mean(float(r) for _, r in g) if g else None,
        )
        for i, g in enumerate(grouped)
    ]
    n = len(pairs)
    gaps = [len(g) / n * abs(statistics.mean(float(r) for _, r in g) - statistics.mean(c for c, _ in g)) for g in grouped if g]
    ece = sum(gaps) if n else None
    brier = statistics.mean((c - float(r)) ** 2 for c, r in pairs) if n else None
    sure = [r for c, r in pairs if c >= confident]
    return Calibration(n, ece, brier, table, len(sure), 100 * statistics.mean(sure) if sure else None)


@dataclass
class FolderQAItem:
    """One question's result: what was said, with what confidence, citing which files, and its outcome."""

    line: int
    question: str
    answerable: bool
    sources: list[str]
    answer: str
    found: bool
    confidence: float
    cited: list[str]
    source_retrieved: bool | None  # answerable: a passage read came from a source file
    outcome: str  # one of OUTCOMES
    seconds: float
    mode: str
    # The confidence's inputs (reader.calibration.Features), also for an answer held back, and the reader's notes
    # (why it abstained): what a refit or a diagnosis of the folder set needs.
    features: dict | None = None
    notes: list[str] = field(default_factory=list)


@dataclass
class FolderQAReport(_Report):
    """``sixfold eval qa --questions FILE``: questions asked of an indexed folder through ``Engine.ask``.
    Percentages: ``right_pct`` of the answerable questions, ``abstained_pct`` of the unanswerable ones."""

    kind: ClassVar[str] = "folder-qa"

    questions_file: str
    folder: str | None
    index: str
    mode: str
    k: int
    questions: int
    answerable: int
    unanswerable: int
    counts: dict[str, int]
    right_pct: float | None
    abstained_pct: float | None
    wrong_confident: int  # wrong answers (incl. answered unanswerable) given with confidence >= confident
    confident: float
    source_retrieved_pct: float | None
    calibration: Calibration
    p50_s: float
    p95_s: float
    index_seconds: float
    reader: str | None = None
    generator: str | None = None
    items: list[FolderQAItem] = field(default_factory=list)

    @property
    def source(self) -> str:
        return self.questions_file


def _outcome(item: FolderQuestion, found: bool, correct: bool, cited: list[str]) -> str:
    if not item.answerable:
        return "answered" if found else "abstained"
    if not found:
        return "missed"
    if not correct:
        return "wrong"
    return "right" if set(cited) & set(item.sources) else "wrong_source"


def _check_sources(items: list[FolderQuestion], folder: Path, questions: str | Path) -> None:
    for item in items:
        for source in item.sources:
            if not (folder / source).is_file():
                raise SixfoldError(f"{questions} line {item.line}: source {source} is not a file in {folder}")


def eval_folder_qa(
    questions: str | Path,
    *,
    folder: str | Path | None = None,
    index_dir: str | Path | None = None,
    k: int = 5,
    mode: str = "auto",
    reader: str | None = None,
    generator: str | None = None,
    limit: int | None = None,
    confident: float = CONFIDENT,
    progress: Callable[[str], None] | None = None,
) -> FolderQAReport:
    """Ask each question of ``questions`` (``datasets.load_folder_questions``) through ``Engine.ask`` over ``folder``
    indexed into ``index_dir`` (incrementally; default ``<cache>/eval/<folder>``), or over the existing index
    ``index_dir`` alone. Latency is per question with the models loaded (one untimed warm-up question first)."""
    from sixfold.engine import Engine
    from sixfold.eval.reports import eval_index

    say = progress or (lambda _message: None)
    items = load_folder_questions(questions)[:limit] if limit else load_folder_questions(questions)
    if folder is not None:
        folder = Path(folder).expanduser()
        if not folder.is_dir():
            raise SixfoldError(f"folder {folder} does not exist" if not folder.exists() else f"{folder} is not a folder")
        _check_sources(items, folder, questions)  # before indexing: a typo fails in a second, not after the run
        index = Path(index_dir) if index_dir is not None else eval_index(None, folder)
    elif index_dir is not None:
        index = Path(index_dir)
    else:
        raise SixfoldError("a folder QA eval needs --folder DIR (indexed for it) or --index IDX (an index of that folder)")
    engine = Engine.open(index)
    index_seconds = 0.0
    if folder is not None:
        say(f"indexing {folder} into {index}")
        started = time.perf_counter()
        engine.index(folder)
        index_seconds = time.perf_counter() - started
    elif not engine.store.exists():
        raise SixfoldError(f"no index at {index} (give --folder DIR to build it)")
    say(f"warming up: {items[0].question}")
    engine.ask(items[0].question, k, mode=mode, reader=reader, generator=generator)
    results: list[FolderQAItem] = []
    for number, item in enumerate(items, start=1):
        started = time.perf_counter()
        answer = engine.ask(item.question, k, mode=mode, reader=reader, generator=generator)
        seconds = time.perf_counter() - started
        cited = list(dict.fromkeys(c.path for c in answer.citations)) if answer.found else []
        correct = answer.found and item.answerable and answer_correct(answer.answer, item.answers, item.answer_regex)
        read = {p.path for p in answer.passages}
        result = FolderQAItem(
            item.line,
            item.question,
            item.answerable,
            item.sources,
            answer.answer,
            answer.found,
            float(answer.confidence),
            cited,
            bool(read & set(item.sources)) if item.answerable else None,
            _outcome(item, answer.found, correct, cited),
            seconds,
            answer.mode,
            answer.features,
            list(answer.notes),
        )
        results.append(result)
        say(f"[{number}/{len(items)}] {result.outcome} {result.confidence:.2f} {seconds:.1f}s  {item.question}")
    return _folder_report(results, questions, folder, index, k, mode, reader, generator, confident, index_seconds)


def _folder_report(
    results: list[FolderQAItem],
    questions: str | Path,
    folder: Path | None,
    index: Path,
    k: int,
    mode: str,
    reader: str | None,
    generator: str | None,
    confident: float,
    index_seconds: float,
) -> FolderQAReport:
    answerable = [r for r in results if r.answerable]
    unanswerable = [r for r in results if not r.answerable]
    counts = {name: sum(r.outcome == name for r in results) for name in OUTCOMES}
    given = [r for r in results if r.found]
    wrong_confident = sum(r.outcome in ("wrong", "answered") and r.confidence >= confident for r in given)
    modes = sorted({r.mode for r in results})
    return FolderQAReport(
        questions_file=str(questions),
        folder=str(folder) if folder is not None else None,
        index=str(index),
        mode=modes[0] if len(modes) == 1 else "+".join(modes),
        k=k,
        questions=len(results),
        answerable=len(answerable),
        unanswerable=len(unanswerable),
        counts=counts,
        right_pct=100 * counts["right"] / len(answerable) if answerable else None,
        abstained_pct=100 * counts["abstained"] / len(unanswerable) if unanswerable else None,
        wrong_confident=wrong_confident,
        confident=confident,
        source_retrieved_pct=100 * statistics.mean(bool(r.source_retrieved) for r in answerable) if answerable else None,
        calibration=calibration([r.confidence for r in given], [r.outcome == "right" for r in given], confident=confident),
        p50_s=_percentile([r.seconds for r in results], 0.50),
        p95_s=_percentile([r.seconds for r in results], 0.95),
        index_seconds=index_seconds,
        reader=reader,
        generator=generator,
        items=results,
    )
