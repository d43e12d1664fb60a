"""QA training data: read SQuAD JSON or JSONL, validate rows, and turn them into model features.

Rows: ``{question, context, answer}`` or ``{question, context, answers: [...]}`` (JSONL), or the SQuAD
``{"data": [{"title", "paragraphs": [{"context", "qas": [...]}]}]}`` file. An answer that does not occur in
its context is rejected with its row named; train/eval overlap is reported by ``overlap``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from indexer.errors import SixfoldError


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
    for item in raw:
        text = item if isinstance(item, str) else item.get("text")
        start = None if isinstance(item, str) else item.get("answer_start")
        if not isinstance(text, str) or not text.strip():
            raise SixfoldError(f"{where}: empty answer")
        if start is None or context[start : start + len(text)] != text:
            start = context.find(text)
        if start < 0:
            raise SixfoldError(f"{where}: answer {text[:60]!r} does not occur in its context")
        answers.append({"text": text, "answer_start": int(start)})
    return answers


def jsonl_rows(path: Path, text: str) -> Iterator[tuple[int, str, object]]:
    """(line number, ``"<path> line N"``, parsed row) for each non-blank line of a JSONL text; bad JSON is an error
    naming the line."""
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{path} line {number}"
        try:
            row = json.loads(line)
        except ValueError as exc:
            raise SixfoldError(f"{where}: not valid JSON ({exc.msg})") from None
        yield number, where, row


def _check_row(row: object, where: str) -> dict:
    if not isinstance(row, dict):
        raise SixfoldError(f"{where}: expected a JSON object")
    for key in ("question", "context"):
        if not isinstance(row.get(key), str) or not row[key].strip():
            raise SixfoldError(f"{where}: missing or empty '{key}'")
    return row


def load_qa_file(path: str | Path, require_answers: bool = True) -> list[QAExample]:
    """Read a SQuAD-format JSON file or a JSONL file of QA rows; errors name the file and line/row."""
    path = Path(path)
    if not path.is_file():
        raise SixfoldError(f"QA file {path} does not exist")
    text = path.read_text(encoding="utf-8", errors="replace")
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
                    answers = _answers_from_row({**row, "answers": qa.get("answers", [])}, where) if require_answers else []
                    examples.append(
                        QAExample(
                            str(qa.get("id", f"{a}-{p}-{q}")), row["question"], row["context"], answers, article.get("title", "")
                        )
                    )
    else:
        for number, where, raw in jsonl_rows(path, text):
            row = _check_row(raw, where)
            answers = _answers_from_row(row, where) if require_answers else []
            examples.append(
                QAExample(str(row.get("id", number)), row["question"], row["context"], answers, str(row.get("title", "")))
            )
    if not examples:
        raise SixfoldError(f"QA file {path} has no questions")
    return examples


def overlap(train: list[QAExample], evaluation: list[QAExample]) -> int:
    """How many eval questions also appear (same question and context) in train."""
    seen = {(e.question.strip().lower(), e.context.strip()) for e in train}
    return sum((e.question.strip().lower(), e.context.strip()) in seen for e in evaluation)


def train_features(examples: list[QAExample], tokenizer, max_length: int = 384, stride: int = 128) -> dict:
    """Tokenised windows with start/end token positions of the first answer (the usual SQuAD recipe).

    Long contexts are split into overlapping windows; a window that does not contain the answer points at
    the [CLS] token, as in the original BERT fine-tuning.
    """
    questions = [e.question.lstrip() for e in examples]
    contexts = [e.context for e in examples]
    enc = tokenizer(
        questions,
        contexts,
        truncation="only_second",
        max_length=max_length,
        stride=stride,
        return_overflowing_tokens=True,
        return_offsets_mapping=True,
        padding="max_length",
    )
    sample_map = enc.pop("overflow_to_sample_mapping")
    offsets_all = enc.pop("offset_mapping")
    starts, ends = [], []
    for i, offsets in enumerate(offsets_all):
        example = examples[sample_map[i]]
        answer = example.answers[0]
        start_char = answer["answer_start"]
        end_char = start_char + len(answer["text"])
        sequence_ids = enc.sequence_ids(i)
        ctx_start = sequence_ids.index(1)
        ctx_end = len(sequence_ids) - 1 - sequence_ids[::-1].index(1)
        if offsets[ctx_start][0] > start_char or offsets[ctx_end][1] < end_char:
            starts.append(0)
            ends.append(0)
            continue
        s = ctx_start
        while s <= ctx_end and offsets[s][0] <= start_char:
            s += 1
        e = ctx_end
        while e >= ctx_start and offsets[e][1] >= end_char:
            e -= 1
        starts.append(s - 1)
        ends.append(e + 1)
    enc["start_positions"] = starts
    enc["end_positions"] = ends
    return dict(enc)
