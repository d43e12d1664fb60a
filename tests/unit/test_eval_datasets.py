"""Retrieval-set parsers (sixfold/eval/datasets.py) on BEIR folders written here: what is read, and bad rows named."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sixfold.core.errors import SixfoldError
from sixfold.eval.datasets import load_retrieval_set


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
