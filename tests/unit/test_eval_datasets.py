"""Retrieval-set parsers (sixfold/eval/datasets.py) on BEIR folders written here: what is read, and bad rows named."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sixfold.core.errors import SixfoldError
from sixfold.eval.datasets import load_folder_questions, load_retrieval_set


def beir(folder: Path, corpus=None, queries=None, qrels="query-id\tcorpus-id\tscore\nq1\t2\t1\nq1\td1\t2\n") -> Path:
    folder.mkdir()
    corpus = corpus if corpus is not None else [{"_id": "d1", "title": "Steam", "text": "engines"}, {"_id": 2, "text": "boilers"}]
    queries = queries if queries is not None else [{"_id": "q1", "text": "steam?"}, {"_id": "q2", "text": "not judged"}]
    (folder / "corpus.jsonl").write_text("\n".join(json.dumps(r) if isinstance(r, dict) else r for r in corpus) + "\n")
    (folder / "queries.jsonl").write_text("\n".join(json.dumps(r) for r in queries) + "\n")
    (folder / "qrels").mkdir()
    (folder / "qrels" / "test.tsv").write_text(qrels)
    return folder


def test_a_beir_folder_is_read(tmp_path):
    data = load_retrieval_set(beir(tmp_path / "tiny"))
    assert data.corpus == {"d1": {"title": "Steam", "text": "engines"}, "2": {"title": "", "text": "boilers"}}
    assert data.queries == {"q1": "steam?"}, "only judged queries are kept; ids become strings"
    assert data.qrels == {"q1": {"2": 1, "d1": 2}}


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"corpus": ['{"_id": "d1", "text": "a"}', "{broken"]}, r"corpus.jsonl line 2: not a BEIR row"),
        ({"corpus": ['{"text": "no id"}']}, r"corpus.jsonl line 1: not a BEIR row"),
        ({"qrels": "q1\td9\t1\n"}, r"test.tsv line 1: corpus id d9 is not in corpus.jsonl"),
        ({"qrels": "q1\td1\t1\nq7\td1\t1\n"}, r"test.tsv line 2: query id q7 is not in queries.jsonl"),
        ({"qrels": "q1\td1\n"}, r"line 1: expected query-id, corpus-id, score"),
        ({"qrels": "query-id\tcorpus-id\tscore\n"}, r"split 'test' .* is empty"),
    ],
)
def test_bad_beir_files_name_the_line(tmp_path, kw, message):
    with pytest.raises(SixfoldError, match=message):
        load_retrieval_set(beir(tmp_path / "bad", **kw))


def test_what_is_not_a_retrieval_set(tmp_path):
    with pytest.raises(SixfoldError, match="does not exist"):
        load_retrieval_set(tmp_path / "missing")
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(SixfoldError, match="not a retrieval set"):
        load_retrieval_set(tmp_path / "notes.txt")
    (tmp_path / "empty").mkdir()
    with pytest.raises(SixfoldError, match="not a retrieval set I know"):
        load_retrieval_set(tmp_path / "empty")
    with pytest.raises(SixfoldError, match="qrels file .*dev.tsv does not exist"):
        load_retrieval_set(beir(tmp_path / "tiny"), split="dev")


# ---- folder QA sets (JSONL / TSV) -----------------------------------------------------------------------------
def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_a_jsonl_question_set_is_read(tmp_path):
    rows = [
        {"question": "Who wrote bc?", "answers": ["Philip Nelson", " Phil "], "source": "bc/README"},
        {"question": "Which regex?", "answers": [], "answer_regex": r"safe_load", "source": ["a.md", "./b\\c.md"]},
        {"question": "Not in the docs?", "answers": [], "source": None},
    ]
    path = write(tmp_path / "q.jsonl", "\ufeff" + "\n".join(json.dumps(r) for r in rows) + "\n\n")
    items = load_folder_questions(path)
    assert [(i.question, i.answers, i.answer_regex, i.sources, i.line, i.answerable) for i in items] == [
        ("Who wrote bc?", ["Philip Nelson", "Phil"], None, ["bc/README"], 1, True),
        ("Which regex?", [], "safe_load", ["a.md", "b/c.md"], 2, True),
        ("Not in the docs?", [], None, [], 3, False),
    ]


def test_a_tsv_question_set_is_read_with_or_without_header(tmp_path):
    body = (
        "Who wrote bc?\tPhilip Nelson|Philip A. Nelson\tbc/README\n"
        "How to parse safely?\t/safe_(load|dump)/\tyaml.md|x.md\n"
        "Unknown?\t\t\n"
    )
    for name, text in (("q.tsv", body), ("q.txt", "question\tanswers\tsource\n" + body)):
        items = load_folder_questions(write(tmp_path / name, text))
        assert [(i.answers, i.answer_regex, i.sources, i.answerable) for i in items] == [
            (["Philip Nelson", "Philip A. Nelson"], None, ["bc/README"], True),
            ([], "safe_(load|dump)", ["yaml.md", "x.md"], True),
            ([], None, [], False),
        ], name
    assert [i.line for i in load_folder_questions(tmp_path / "q.txt")] == [2, 3, 4], "line numbers count the header"


def test_the_format_is_sniffed_when_the_suffix_says_nothing(tmp_path):
    path = write(tmp_path / "questions", '\n{"question": "q?", "answers": ["a"], "source": "f.txt"}\n')
    assert load_folder_questions(path)[0].sources == ["f.txt"]


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("q.jsonl", '{"question": "a?", "answers": ["x"], "source": "f"}\n{broken\n', r"q.jsonl line 2: not a question row"),
        ("q.jsonl", '["a list"]\n', r"line 1: not a question row \(expected a JSON object\)"),
        ("q.jsonl", '{"question": "", "answers": ["x"], "source": "f"}\n', r"line 1: no question"),
        ("q.jsonl", '{"question": "a?", "answers": "x", "source": "f", "anwser": 1}\n', r"line 1: unknown field\(s\) anwser"),
        ("q.jsonl", '{"question": "a?", "answers": [1], "source": "f"}\n', r"line 1: 'answers' must be a list"),
        ("q.jsonl", '{"question": "a?", "answer_regex": "(", "source": "f"}\n', r"line 1: answer_regex '\(' is not a valid"),
        ("q.jsonl", '{"question": "a?", "answers": ["x"], "source": 3}\n', r"line 1: 'source' must be a file path"),
        ("q.jsonl", '{"question": "a?", "answers": ["x"], "source": null}\n', r"line 1: an answerable question needs"),
        ("q.jsonl", '{"question": "a?", "answers": [], "source": "f"}\n', r"line 1: a source but no 'answers'"),
        ("q.tsv", "a?\tx\tf\nb?\tx\n", r"q.tsv line 2: expected 3 tab-separated columns .* got 2"),
        ("q.tsv", "a?\t\tf\n", r"q.tsv line 1: a source but no 'answers'"),
        ("q.tsv", "\n\n", r"holds no questions"),
    ],
)
def test_bad_question_rows_name_the_line(tmp_path, name, text, message):
    with pytest.raises(SixfoldError, match=message):
        load_folder_questions(write(tmp_path / name, text))


def test_a_missing_questions_file(tmp_path):
    with pytest.raises(SixfoldError, match="questions file .*nope.jsonl does not exist"):
        load_folder_questions(tmp_path / "nope.jsonl")
    with pytest.raises(SixfoldError, match="is not a file"):
        load_folder_questions(tmp_path)


def test_the_shipped_folder_set_is_valid_and_its_sources_exist():
    bench = Path(__file__).resolve().parents[2] / "bench" / "folder_qa"
    items = load_folder_questions(bench / "questions.jsonl")
    answerable = [i for i in items if i.answerable]
    assert len(answerable) >= 40 and len(items) - len(answerable) >= 15
    assert all((bench / "docs" / s).is_file() for i in answerable for s in i.sources)
    suffixes = {p.suffix for i in answerable for p in map(Path, i.sources)}
    assert {".html", ".md", ".txt", ".gz", ".pdf", ""} <= suffixes, "every format is asked about"
