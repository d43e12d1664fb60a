"""The one JSONL reader (sixfold.core.files.iter_jsonl) and the three loaders that use it: line numbers, byte-order
marks, bad lines named, and rows that hold characters str.splitlines() would break at."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sixfold.core.errors import SixfoldError
from sixfold.core.files import iter_jsonl
from sixfold.eval.datasets import load_retrieval_set
from sixfold.reader.classify import load_examples
from sixfold.tuner.data import load_pairs, load_qa_file, load_rerank_pairs

# U+2028 / U+2029 (line and paragraph separators) and U+0085 (next line) are legal unescaped in a JSON string and
# json.dumps(ensure_ascii=False) writes them as they are, yet str.splitlines() ends a line at each of them.
SEPARATORS = "one\u2028two\u2029three\x85four"


def test_rows_come_with_their_line_numbers_and_blank_lines_are_skipped(tmp_path: Path) -> None:
    path = tmp_path / "rows.jsonl"
    path.write_text('{"a": 1}\n\n   \n[2, 3]\r\n"text"\n', encoding="utf-8")
    rows = list(iter_jsonl(path))
    assert [(r.number, r.where, r.row) for r in rows] == [
        (1, f"{path} line 1", {"a": 1}),
        (4, f"{path} line 4", [2, 3]),
        (5, f"{path} line 5", "text"),
    ]


def test_a_bad_line_is_one_error_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "rows.jsonl"
    path.write_text('{"a": 1}\n\n{"a": 2,\n', encoding="utf-8")
    with pytest.raises(SixfoldError, match=r"^\S*rows.jsonl line 3: not valid JSON \(Expecting property name") as caught:
        list(iter_jsonl(path))
    assert "\n" not in str(caught.value)
    with pytest.raises(SixfoldError, match=r"rows.jsonl line 3: not a BEIR row \("):
        list(iter_jsonl(path, invalid="not a BEIR row"))


@pytest.mark.parametrize("given", [False, True], ids=["read-here", "text-given"])
def test_a_byte_order_mark_does_not_make_line_1_invalid(tmp_path: Path, given: bool) -> None:
    path = tmp_path / "bom.jsonl"
    path.write_text('\ufeff{"a": 1}\n{"a": 2}\n', encoding="utf-8")
    text = path.read_text(encoding="utf-8") if given else None  # plain utf-8 keeps the BOM in the text
    assert [r.row for r in iter_jsonl(path, text)] == [{"a": 1}, {"a": 2}]


def test_unicode_line_separators_inside_a_string_stay_in_their_row(tmp_path: Path) -> None:
    path = tmp_path / "rows.jsonl"
    path.write_text(json.dumps({"text": SEPARATORS}, ensure_ascii=False) + "\n" + '{"text": "next"}\n', encoding="utf-8")
    assert [(r.number, r.row) for r in iter_jsonl(path)] == [(1, {"text": SEPARATORS}), (2, {"text": "next"})]


def write(path: Path, rows: list[dict], bom: bool = True) -> Path:
    body = "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
    path.write_text(("\ufeff" if bom else "") + body, encoding="utf-8")
    return path


def test_every_loader_reads_bom_files_and_separator_characters(tmp_path: Path) -> None:
    """The three JSONL loaders share the reader: each takes a BOM and a row with U+2028 in a string."""
    examples = load_examples(
        write(tmp_path / "examples.jsonl", [{"text": SEPARATORS, "label": "a"}, {"text": "b", "label": "b"}])
    )
    assert [e.text for e in examples] == [SEPARATORS, "b"]
    pairs = load_pairs(write(tmp_path / "pairs.jsonl", [{"query": "q", "passage": SEPARATORS}]))
    assert pairs[0].passage == SEPARATORS
    qa = load_qa_file(write(tmp_path / "qa.jsonl", [{"question": "q?", "context": f"{SEPARATORS} end", "answer": "end"}]))
    assert qa[0].context == f"{SEPARATORS} end" and qa[0].answers == [{"text": "end", "answer_start": len(SEPARATORS) + 1}]
    rerank = load_rerank_pairs(write(tmp_path / "rerank.jsonl", [{"query": "q", "positive": SEPARATORS}]))
    assert rerank[0].positives == (SEPARATORS,)
    beir = tmp_path / "beir"
    (beir / "qrels").mkdir(parents=True)
    write(beir / "corpus.jsonl", [{"_id": "d1", "text": SEPARATORS}])
    write(beir / "queries.jsonl", [{"_id": "q1", "text": "q"}])
    (beir / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td1\t1\n")
    assert load_retrieval_set(beir).corpus == {"d1": {"title": "", "text": SEPARATORS}}


@pytest.mark.parametrize(
    ("loader", "name", "message"),
    [
        (load_examples, "examples.jsonl", r"examples.jsonl line 2: not valid JSON \("),
        (load_pairs, "pairs.jsonl", r"pairs.jsonl line 2: not valid JSON \("),
        (load_qa_file, "qa.jsonl", r"qa.jsonl line 2: not valid JSON \("),
        (load_rerank_pairs, "rerank.jsonl", r"rerank.jsonl line 2: not valid JSON \("),
    ],
)
def test_every_loader_names_the_bad_line(tmp_path: Path, loader, name: str, message: str) -> None:
    path = tmp_path / name
    row = {
        "text": "a",
        "label": "x",
        "query": "q",
        "passage": "p",
        "positive": "p",
        "question": "q?",
        "context": "a",
        "answer": "a",
    }
    path.write_text(json.dumps(row) + "\n{broken\n", encoding="utf-8")
    with pytest.raises(SixfoldError, match=message):
        loader(path)


def test_beir_rows_that_are_not_objects_with_an_id_are_named(tmp_path: Path) -> None:
    beir = tmp_path / "beir"
    (beir / "qrels").mkdir(parents=True)
    (beir / "corpus.jsonl").write_text('{"_id": "d1", "text": "a"}\n["d2", "b"]\n', encoding="utf-8")
    with pytest.raises(SixfoldError, match=r"corpus.jsonl line 2: not a BEIR row \(expected an object with an _id\)"):
        load_retrieval_set(beir)
