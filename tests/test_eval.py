"""sixfold eval: BEIR retrieval through the normal index path, classification scoring, and bad benchmark files."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from sixfold.core.errors import SixfoldError
from sixfold.eval.classify import eval_classify
from sixfold.eval.datasets import load_beir
from sixfold.eval.retrieval import eval_retrieval

from conftest import assert_one_error_line

BEIR = Path(__file__).parent / "fixtures" / "beir_tiny"


@pytest.fixture(scope="module")
def retrieval_report(tmp_path_factory):
    return eval_retrieval(BEIR, ["bm25", "dense", "hybrid"], tmp_path_factory.mktemp("beir") / "idx")


def test_retrieval_eval_scores_every_mode_with_standard_measures(retrieval_report):
    assert retrieval_report["queries"] == 8 and retrieval_report["documents"] == 40
    for mode in ("bm25", "dense", "hybrid"):
        scores = retrieval_report["modes"][mode]
        assert set(scores) >= {"nDCG@10", "Recall@10", "Recall@100", "MRR@10", "p50_ms"}
        assert 0.5 <= scores["nDCG@10"] <= 1.0  # 40 documents: every mode finds most relevant abstracts
        assert scores["Recall@100"] >= scores["Recall@10"]


def test_second_eval_reuses_the_index(tmp_path):
    index = tmp_path / "idx"
    eval_retrieval(BEIR, ["bm25"], index, limit=2)
    from sixfold.engine import Engine

    generation = Engine.open(index).status().generation
    again = eval_retrieval(BEIR, ["bm25"], index, limit=2)
    assert Engine.open(index).status().generation == generation
    assert again["queries"] == 2


def test_rerank_mode_without_a_model_is_refused(tmp_path):
    with pytest.raises(SixfoldError, match="rerank"):
        eval_retrieval(BEIR, ["hybrid+rerank"], tmp_path / "idx")


def _broken_copy(tmp_path: Path) -> Path:
    target = tmp_path / "beir"
    shutil.copytree(BEIR, target)
    return target


def test_qrels_id_not_in_corpus_names_file_and_line(tmp_path):
    beir = _broken_copy(tmp_path)
    qrels = beir / "qrels" / "test.tsv"
    qrels.write_text(qrels.read_text() + "1\tnot-a-doc\t1\n")
    lines = len(qrels.read_text().splitlines())
    with pytest.raises(SixfoldError, match=rf"test.tsv line {lines}: corpus id not-a-doc"):
        load_beir(beir)


def test_missing_files_and_empty_split(tmp_path, cli):
    beir = _broken_copy(tmp_path)
    (beir / "queries.jsonl").unlink()
    code, _out, err = cli("eval", "retrieval", "--beir", beir, "--index", tmp_path / "i")
    assert_one_error_line(code, err, "queries.jsonl", "does not exist")
    beir = _broken_copy(tmp_path / "b")
    (beir / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\n")
    code, _out, err = cli("eval", "retrieval", "--beir", beir, "--index", tmp_path / "i")
    assert_one_error_line(code, err, "empty")
    code, _out, err = cli("eval", "retrieval", "--beir", tmp_path / "nowhere", "--index", tmp_path / "i")
    assert_one_error_line(code, err, "does not exist")


def _label_files(tmp_path: Path) -> tuple[Path, Path]:
    train = tmp_path / "train.csv"
    test = tmp_path / "test.csv"
    train.write_text(
        "text,label\n"
        "my card payment was declined,card\nI was charged twice for one purchase,card\nwhy is my card blocked,card\n"
        "will it rain tomorrow,weather\nhow hot is it today,weather\nis a storm coming this weekend,weather\n"
    )
    test.write_text("the shop charged my card two times,card\nwill there be snow tonight,weather\n")
    return train, test


def test_classification_eval_reports_accuracy_and_macro_f1(tmp_path):
    report = eval_classify(*_label_files(tmp_path), shots=2)
    assert report["examples"] == 4 and report["test_items"] == 2
    assert report["accuracy"] == 1.0 and report["macro_f1"] == 1.0


def test_every_eval_writes_a_json_report_even_without_out(tmp_path, cli, monkeypatch):
    """No --out: the report still lands, time-stamped, under the eval cache, and stderr says where."""
    monkeypatch.setenv("SIXFOLD_CACHE", str(tmp_path / "cache"))
    train, test = _label_files(tmp_path)
    code, out, err = cli("eval", "classify", "--train", train, "--test", test, "--shots", "2")
    assert code == 0, err
    assert "accuracy" in out
    reports = list((tmp_path / "cache" / "eval" / "reports").glob("classify-*-test_csv-*.json"))
    assert len(reports) == 1 and f"report: {reports[0]}\n" in err
    assert json.loads(reports[0].read_text())["accuracy"] == 1.0
    assert not list(reports[0].parent.glob("*.tmp"))


def test_unwritable_report_path_fails_before_the_eval(tmp_path, cli):
    train, test = _label_files(tmp_path)
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    code, _out, err = cli("eval", "classify", "--train", train, "--test", test, "--out", blocker / "report.json")
    assert "cannot write the report" in assert_one_error_line(code, err, "a-file")
