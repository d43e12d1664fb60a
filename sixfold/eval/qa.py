"""``sixfold eval qa``: SQuAD v1.1 EM/F1 (``metrics``, the official normalisation), reading the gold paragraph with
the extractive reader, or open-book: every paragraph indexed with ``Engine.index``, answers from retrieved passages."""

from __future__ import annotations

import random
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from sixfold.core import config
from sixfold.core.errors import SixfoldError
from sixfold.eval.reports import QAReport
from sixfold.reader.metrics import exact_match, f1_score

if TYPE_CHECKING:
    from sixfold.engine import Engine
    from sixfold.reader.extractive import ExtractiveReader
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


def _gold_paragraph(examples: list[QAExample], extractive: ExtractiveReader | None) -> _Tally:
    from sixfold.reader.types import Passage

    assert extractive is not None  # eval_qa refuses the gold paragraph without an extractive reader
    tally = _Tally()
    for e in examples:
        t = time.perf_counter()
        text, _score, _citations = extractive.answer(e.question, [Passage(0, e.context, "gold")])
        tally.add(text, bool(text), [a["text"] for a in e.answers], time.perf_counter() - t)
    return tally


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
    from sixfold.engine import Engine
    from sixfold.reader.extractive import load_extractive
    from sixfold.tuner.data import load_qa_file

    if mode not in ("extractive", "generative"):
        raise SixfoldError(f"unknown QA mode '{mode}' (choose from extractive, generative)")
    if mode == "generative" and not open_book:
        raise SixfoldError("eval qa --mode generative needs --open (the gold-paragraph eval reads with the extractive reader)")
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
        tally = _gold_paragraph(examples, extractive)
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
