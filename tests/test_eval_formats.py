"""sixfold eval retrieval on classic SMART collections (Cranfield / CISI / MEDLINE layouts) and XQuAD-R: reading,
judged-query handling, scoring through the normal index path, and bad files named with their line."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from sixfold.core.errors import SixfoldError
from sixfold.eval.datasets import load_retrieval_set
from sixfold.eval.retrieval import eval_retrieval

from conftest import assert_one_error_line

FIXTURES = Path(__file__).parent / "fixtures"
SMART = FIXTURES / "smart_tiny"
XQUAD_R = FIXTURES / "xquad_r_tiny_es.json"


def _smart_copy(tmp_path: Path) -> Path:
    target = tmp_path / "med"
    shutil.copytree(SMART, target)
    return target


def test_smart_folder_is_detected_and_only_judged_queries_count():
    data = load_retrieval_set(SMART)
    assert data.format == "classic" and len(data.corpus) == 16
    assert data.queries_total == 3 and sorted(data.queries) == ["1", "2"]  # query 3 has no judgements
    assert any("1 of 3 queries" in note for note in data.notes)
    assert data.qrels["1"] == {"1": 1, "2": 1, "3": 1, "4": 1}


def test_cranfield_layout_grades_and_positional_query_ids(tmp_path):
    folder = tmp_path / "cran"
    folder.mkdir()
    (folder / "cran.all.1400").write_text(
        ".I 1\n.T\nwing flutter .\n.A\nx\n.B\ny\n.W\nwing flutter .\nflutter of a swept wing in a wind tunnel .\n"
        ".I 2\n.T\nboundary layers .\n.W\nlaminar boundary layer on a flat plate .\n"
        ".I 3\n.T\n.A\n.B\n.W\n"
    )
    (folder / "cran.qry").write_text(".I 001\n.W\nwing flutter .\n.I 004\n.W\nflat plate boundary layer .\n")
    (folder / "cranqrel").write_text("1 1 1\n1 2 -1\n2 2 4\n")
    data = load_retrieval_set(folder)
    # query "2" is the second query in the file (.I 004); code 1 (complete answer) -> gain 4, 4 -> 1, -1 -> 0
    assert data.qrels == {"1": {"1": 4, "2": 0}, "2": {"2": 1}}
    assert data.queries["2"] == "flat plate boundary layer ."
    assert data.corpus["1"] == {"title": "wing flutter .", "text": "flutter of a swept wing in a wind tunnel ."}
    assert any("empty" in note for note in data.notes) and any("positions" in note for note in data.notes)


@pytest.mark.parametrize(
    ("name", "content", "fragments"),
    [
        ("MED.REL", "1 0 1 1\n2 0 99 1\n", ("MED.REL line 2", "document 99 is not in MED.ALL")),
        ("MED.REL", "1 0 1 1\n7 0 2 1\n", ("MED.REL line 2", "query 7 is not in MED.QRY")),
        ("MED.REL", "1 0 1 1\nfoo bar\n", ("MED.REL line 2", "expected 'query doc relevance'")),
        ("MED.REL", "", ("MED.REL", "judges no document relevant")),
        ("MED.QRY", ".I 1\n.W\nlens\n.I one\n.W\nx\n", ("MED.QRY line 4", "expected '.I <number>'")),
        ("MED.QRY", ".I 1\n.W\nlens\n.I 1\n.W\nx\n", ("MED.QRY line 4", "appears twice")),
        ("MED.QRY", "some words\n.I 1\n.W\nlens\n", ("MED.QRY line 1", "outside a record")),
    ],
)
def test_bad_smart_files_name_file_and_line(tmp_path, name, content, fragments):
    folder = _smart_copy(tmp_path)
    (folder / name).write_text(content)
    with pytest.raises(SixfoldError) as error:
        load_retrieval_set(folder)
    for fragment in fragments:
        assert fragment in str(error.value)


def test_missing_smart_file_is_named(tmp_path, cli):
    folder = _smart_copy(tmp_path)
    (folder / "MED.QRY").unlink()
    code, _out, err = cli("eval", "retrieval", "--dataset", folder, "--index", tmp_path / "i")
    assert_one_error_line(code, err, "no queries (*.QRY) file")
    code, _out, err = cli("eval", "retrieval", "--dataset", tmp_path / "empty.txt", "--index", tmp_path / "i")
    assert_one_error_line(code, err, "does not exist")


def test_xquad_r_sentences_are_documents_and_the_answer_sentence_is_relevant():
    data = load_retrieval_set(XQUAD_R)
    assert data.format == "xquad-r" and data.language == "es"
    assert len(data.queries) == 6
    raw = json.loads(XQUAD_R.read_text(encoding="utf-8"))
    paragraph = raw["data"][0]["paragraphs"][0]
    qa = paragraph["qas"][0]
    (doc,) = data.qrels[qa["id"]]
    assert qa["answers"][0]["text"] in data.corpus[doc]["text"]
    assert not data.corpus["1-1"]["text"].startswith("\ufeff")


def test_bad_xquad_r_files_name_the_place(tmp_path):
    raw = json.loads(XQUAD_R.read_text(encoding="utf-8"))
    raw["data"][0]["paragraphs"][1]["qas"][0]["answers"][0]["answer_start"] = 99_999
    bad = tmp_path / "es.json"
    bad.write_text(json.dumps(raw))
    with pytest.raises(SixfoldError, match=r"es.json article 1 paragraph 2 question .*answer_start 99999 lies in no sentence"):
        load_retrieval_set(bad)
    del raw["data"][0]["paragraphs"][1]["sentences"]
    bad.write_text(json.dumps(raw))
    with pytest.raises(SixfoldError, match=r"article 1 paragraph 2: no 'sentences'"):
        load_retrieval_set(bad)
    bad.write_text("{not json")
    with pytest.raises(SixfoldError, match="not SQuAD-style JSON"):
        load_retrieval_set(bad)


def test_smart_and_xquad_r_are_scored_through_the_index(tmp_path):
    smart = eval_retrieval(SMART, ["bm25", "hybrid"], tmp_path / "smart")
    assert smart["queries"] == 2 and smart["queries_total"] == 3 and smart["documents"] == 16
    assert smart["modes"]["bm25"]["Recall@100"] == 1.0  # every document is ranked: all relevant ones are found
    assert smart["modes"]["hybrid"]["nDCG@10"] >= 0.6
    xquad = eval_retrieval(XQUAD_R, ["bm25"], tmp_path / "xq")
    from sixfold.engine import Engine

    assert Engine.open(tmp_path / "xq").status().language == "es"  # the set's language picks the BM25 stemmer
    assert xquad["queries"] == 6 and xquad["modes"]["bm25"]["MRR@10"] >= 0.5
