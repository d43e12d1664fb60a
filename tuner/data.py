"""Training data for the tuner: read and validate the files each role trains on, split them, and find train/eval overlap.

- Reader: QA rows, ``{question, context, answer}`` or ``{question, context, answers: [...]}`` (JSONL), or the SQuAD
  ``{"data": [{"title", "paragraphs": [{"context", "qas": [...]}]}]}`` file. An answer that does not occur in its
  context is rejected with its row named.
- Embedder: ``{query, passage}`` JSONL pairs. A row may carry ``"synthetic": true`` (written by ``tune embedder
  --synthesize``); the flag is kept so a report can say its eval is on synthetic pairs.
- Reranker: queries with positive passages, JSONL ``{query, positive}`` or CSV / TSV (``RerankQuery``; BEIR qrels are
  read by ``sixfold.eval.datasets``).

Every bad row is one ``SixfoldError`` naming the file and its line (or SQuAD article / paragraph / question).
"""

from __future__ import annotations

import csv
import json
import os
import random
from dataclasses import dataclass, field
from pathlib import Path

from sixfold.core.errors import SixfoldError
from sixfold.core.files import iter_jsonl


def text_key(text: str) -> str:
    """A text compared without case or spacing: how overlap and duplicates are found."""
    return " ".join(text.lower().split())


# ---- reader: QA files ------------------------------------------------------------------------------------------------
@dataclass
class QAExample:
    id: str
    question: str
    context: str
    answers: list[dict] = field(default_factory=list)  # [{"text", "answer_start"}]
    title: str = ""


def _answers_from_row(row: dict, where: str) -> list[dict]:
    raw = row.get("answers", row.get("answer"))
    if raw is None:
        raise SixfoldError(f"{where}: no 'answer' or 'answers'")
    if isinstance(raw, (str, dict)):
        raw = [raw]
    if isinstance(raw, dict) and "text" in raw:  # HF datasets style {"text": [...], "answer_start": [...]}
        raw = [{"text": t, "answer_start": s} for t, s in zip(raw["text"], raw.get("answer_start", [None] * len(raw["text"])))]
    answers = []
    context = row["context"]
    texts = [item if isinstance(item, str) else item.get("text") if isinstance(item, dict) else None for item in raw]
    if not any(isinstance(t, str) and t.strip() for t in texts):
        raise SixfoldError(f"{where}: empty answer")
    for item, text in zip(raw, texts):
        start = None if isinstance(item, str) else item.get("answer_start")
        if not isinstance(text, str) or not text.strip():
            continue  # one reference of several left empty (SQuAD-es: an answer the translation could not align)
        if start is None or context[start : start + len(text)] != text:
            start = context.find(text)
        if start < 0:
            raise SixfoldError(f"{where}: answer {text[:60]!r} does not occur in its context")
        answers.append({"text": text, "answer_start": int(start)})
    return answers


def _check_row(row: object, where: str) -> dict:
    if not isinstance(row, dict):
        raise SixfoldError(f"{where}: expected a JSON object")
    for key in ("question", "context"):
        if not isinstance(row.get(key), str) or not row[key].strip():
            raise SixfoldError(f"{where}: missing or empty '{key}'")
    return row


def load_qa_file(path: str | os.PathLike[str], require_answers: bool = True, unanswerable: bool = False) -> list[QAExample]:
    """Read a SQuAD-format JSON file or a JSONL file of QA rows; errors name the file and line/row.
    ``require_answers=False``: answers are not read; ``unanswerable``: a row without answers is read with none (a
    question its context does not answer), any answer it has is checked."""
    path = Path(path)
    if not path.is_file():
        raise SixfoldError(f"QA file {path} does not exist")
    text = path.read_text(encoding="utf-8-sig", errors="replace")  # -sig: a byte-order mark is not part of the JSON
    if not text.strip():
        raise SixfoldError(f"QA file {path} is empty")
    examples: list[QAExample] = []
    stripped = text.lstrip()
    if stripped.startswith("{") and '"data"' in stripped[:2000]:
        try:
            data = json.loads(text)["data"]
        except (ValueError, KeyError, TypeError) as exc:
            raise SixfoldError(f"{path}: not a SQuAD JSON file ({exc})") from None
        for a, article in enumerate(data):
            for p, paragraph in enumerate(article.get("paragraphs", [])):
                for q, qa in enumerate(paragraph.get("qas", [])):
                    where = f"{path} article {a} paragraph {p} question {q}"
                    row = _check_row({"question": qa.get("question"), "context": paragraph.get("context")}, where)
                    given = qa.get("answers", [])
                    wanted = require_answers and not (unanswerable and not given)
                    answers = _answers_from_row({**row, "answers": given}, where) if wanted else []
                    examples.append(
                        QAExample(
                            str(qa.get("id", f"{a}-{p}-{q}")), row["question"], row["context"], answers, article.get("title", "")
                        )
                    )
    else:
        for number, where, raw in iter_jsonl(path, text):
            row = _check_row(raw, where)
            given = row.get("answers", row.get("answer"))
            wanted = require_answers and not (unanswerable and not given)
            answers = _answers_from_row(row, where) if wanted else []
            examples.append(
                QAExample(str(row.get("id", number)), row["question"], row["context"], answers, str(row.get("title", "")))
            )
    if not examples:
        raise SixfoldError(f"QA file {path} has no questions")
    return examples


def qa_overlap(train: list[QAExample], evaluation: list[QAExample]) -> int:
    """How many eval questions also appear (same question and context) in train."""
    seen = {(e.question.strip().lower(), e.context.strip()) for e in train}
    return sum((e.question.strip().lower(), e.context.strip()) in seen for e in evaluation)


# ---- embedder: (query, passage) pairs --------------------------------------------------------------------------------
@dataclass(frozen=True)
class Pair:
    query: str
    passage: str
    synthetic: bool = False
    source: str = ""  # where the passage came from (a chunk's path), for synthesized pairs


def load_pairs(path: str | Path, what: str = "pairs") -> list[Pair]:
    """Read a JSONL file of ``{query, passage}`` rows; a bad row is an error naming its line."""
    path = Path(path)
    if not path.exists():
        raise SixfoldError(f"{what} file {path} does not exist")
    if not path.is_file():
        raise SixfoldError(f"{what} file {path} is not a file")
    text = path.read_text(encoding="utf-8-sig", errors="replace")
    if not text.strip():
        raise SixfoldError(f"{what} file {path} is empty")
    pairs: list[Pair] = []
    for _number, where, row in iter_jsonl(path, text):
        if not isinstance(row, dict):
            raise SixfoldError(f"{where}: expected a JSON object with 'query' and 'passage'")
        for key in ("query", "passage"):
            if not isinstance(row.get(key), str) or not row[key].strip():
                raise SixfoldError(f"{where}: missing or empty '{key}'")
        synthetic, source = bool(row.get("synthetic", False)), str(row.get("source", ""))
        pairs.append(Pair(row["query"].strip(), row["passage"].strip(), synthetic, source))
    if not pairs:
        raise SixfoldError(f"{what} file {path} has no pairs")
    return pairs


def write_pairs(pairs: list[Pair], path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as handle:
        for p in pairs:
            row: dict[str, str | bool] = {"query": p.query, "passage": p.passage}
            if p.synthetic:
                row["synthetic"] = True
            if p.source:
                row["source"] = p.source
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")
    return path


def pair_overlap(train: list[Pair], evaluation: list[Pair]) -> dict[str, int]:
    """Eval pairs whose query, or whose whole (query, passage) pair, also occurs in train."""
    queries = {text_key(p.query) for p in train}
    whole = {(text_key(p.query), text_key(p.passage)) for p in train}
    return {
        "queries": sum(text_key(p.query) in queries for p in evaluation),
        "pairs": sum((text_key(p.query), text_key(p.passage)) in whole for p in evaluation),
    }


def hold_out(pairs: list[Pair], fraction: float, seed: int) -> tuple[list[Pair], list[Pair]]:
    """Split by query (all pairs of one query land on the same side), shuffled with ``seed``."""
    if not 0.0 < fraction < 1.0:
        raise SixfoldError(f"--holdout must be between 0 and 1, got {fraction}")
    queries = sorted({text_key(p.query) for p in pairs})
    if len(queries) < 2:
        raise SixfoldError("need at least 2 distinct queries to hold some out for evaluation (or pass --eval)")
    random.Random(seed).shuffle(queries)
    n_eval = min(max(1, round(len(queries) * fraction)), len(queries) - 1)
    held = set(queries[:n_eval])
    return [p for p in pairs if text_key(p.query) not in held], [p for p in pairs if text_key(p.query) in held]


# ---- reranker: queries with positive passages ------------------------------------------------------------------------
@dataclass(frozen=True)
class RerankQuery:
    """A training or eval query: its relevant files (stems) and/or given positive passages."""

    query: str
    relevant: frozenset[str] = frozenset()
    positives: tuple[str, ...] = ()


def load_rerank_pairs(path: str | Path) -> list[RerankQuery]:
    """Query / positive-passage pairs: JSONL ``{"query", "positive"}`` (or ``"positives": [...]``), or a CSV / TSV
    with the columns ``query`` and ``positive``. Rows of the same query are merged."""
    path = Path(path)
    if not path.is_file():
        raise SixfoldError(f"pairs file {path} does not exist")
    rows: list[tuple[int, str, list[str]]] = []
    text = path.read_text(encoding="utf-8-sig")
    if path.suffix.lower() in (".csv", ".tsv"):
        reader = csv.DictReader(text.splitlines(), delimiter="\t" if path.suffix.lower() == ".tsv" else ",")
        if not reader.fieldnames or not {"query", "positive"} <= set(reader.fieldnames):
            raise SixfoldError(f"{path} line 1: expected a header with the columns query and positive")
        for number, row in enumerate(reader, start=2):
            rows.append((number, row.get("query") or "", [row.get("positive") or ""]))
    else:
        for number, where, value in iter_jsonl(path, text):
            try:
                if not isinstance(value, dict):
                    raise TypeError(f"got {type(value).__name__}")
                positives = value["positives"] if "positives" in value else [value["positive"]]
                rows.append((number, str(value["query"]), [str(p) for p in positives]))
            except (KeyError, TypeError) as exc:
                raise SixfoldError(f'{where}: expected {{"query": ..., "positive": ...}} ({exc})') from None
    merged: dict[str, list[str]] = {}
    for number, query, positives in rows:
        if not query.strip() or not any(p.strip() for p in positives):
            raise SixfoldError(f"{path} line {number}: empty query or positive passage")
        merged.setdefault(query.strip(), []).extend(p.strip() for p in positives if p.strip())
    if not merged:
        raise SixfoldError(f"pairs file {path} holds no pairs")
    return [RerankQuery(q, positives=tuple(p)) for q, p in merged.items()]


RERANK_HOLDOUT = 0.1  # of the training queries held out for the before/after eval, when no eval split is given
RERANK_EVAL_LIMIT = 200  # at most this many held-out queries (each is a hybrid search twice)


def split_queries(
    queries: list[RerankQuery], fraction: float, seed: int, cap: int = RERANK_EVAL_LIMIT
) -> tuple[list[RerankQuery], list[RerankQuery]]:
    """Hold out ``fraction`` of the queries (at most ``cap``) for the before/after eval, seeded."""
    order = list(queries)
    random.Random(seed).shuffle(order)
    held = min(cap, max(1, int(round(fraction * len(order))))) if len(order) > 1 else 0
    return order[held:], order[:held]
