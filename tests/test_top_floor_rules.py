"""The rules the CLI delegates: the Engine lists and switches tuned model versions, sixfold.eval owns its typed
reports (written whole, named after the benchmark) and the SQuAD metrics module stays light enough for the reader."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from sixfold.core.errors import SixfoldError
from sixfold.eval.reports import ClassifyReport, Confusion, ModeScores, QAReport, RetrievalReport, write_report

from conftest import assert_one_error_line, cli_env, copy_index


def test_the_metrics_module_loads_neither_the_engine_nor_the_runners(tmp_path):
    probe = (
        "import json, sys\nimport sixfold.reader.metrics, sixfold.reader.extractive\n"
        "print(json.dumps(sorted(m for m in ('sixfold.engine', 'sixfold.eval.retrieval', 'sixfold.eval.qa', 'torch')"
        " if m in sys.modules)))"
    )
    done = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, env=cli_env(), capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == []


def test_reports_serialise_with_the_published_measure_names():
    scores = ModeScores(0.5, 0.6, 0.9, 0.4, 1.0, 12.0, 30.0)
    report = RetrievalReport("beir/x", "x", "beir", "test", 2, 3, 10, 12, 1.5, modes={"bm25": scores})
    assert report.to_dict()["modes"]["bm25"] == {
        "nDCG@10": 0.5, "Recall@10": 0.6, "Recall@100": 0.9, "MRR@10": 0.4, "seconds": 1.0, "p50_ms": 12.0, "p95_ms": 30.0,
    }  # fmt: skip
    assert report["modes"]["bm25"]["nDCG@10"] == 0.5 and report["queries_total"] == 3
    gold = QAReport("dev.json", 4, False, "extractive", 50.0, 60.0, 75.0, 0.2)
    assert gold["EM"] == 50.0 and not any(key.startswith("recall@") for key in gold.to_dict())
    assert QAReport("dev.json", 4, True, "extractive", 50.0, 60.0, 75.0, 0.2, k=3, recall=80.0)["recall@3"] == 80.0
    classify = ClassifyReport("t.csv", "s.csv", 4, 2, None, 1.0, 1.0, 3.0, [Confusion(2, "a", "b")])
    assert classify.to_dict()["top_confusions"] == [{"count": 2, "gold": "a", "predicted": "b"}]


def test_a_report_is_written_whole_under_the_eval_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("SIXFOLD_CACHE", str(tmp_path / "cache"))
    (tmp_path / "sets").mkdir()
    test = tmp_path / "sets" / "test.csv"
    test.write_text("text,label\nx,a\n")
    report = ClassifyReport("train.csv", str(test), 4, 2, 2, 0.5, 0.4, 3.0)
    path = write_report(report)
    assert path.parent == tmp_path / "cache" / "eval" / "reports" and path.name.startswith("classify-sets-test_csv-")
    assert json.loads(path.read_text()) == report.to_dict()
    assert not list(path.parent.glob("*.tmp"))
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    with pytest.raises(SixfoldError, match="cannot write the report"):
        write_report(report, blocker / "report.json")


def _index_with_a_reader_version(shared_index, tmp_path):
    from sixfold.tuner.versions import Registry

    root = copy_index(shared_index.path, tmp_path / "idx")
    registry = Registry(root)
    number, folder = registry.new_version_dir("reader")
    (folder / "config.json").write_text("{}")
    registry.add("reader", number, folder, {"base": "enc", "eval_before": {"F1": 10.0}, "eval": {"F1": 20.0}}, activate=False)
    return root


def test_the_engine_lists_and_switches_versions(shared_index, tmp_path):
    from sixfold.engine import Engine
    from sixfold.tuner.versions import Registry

    root = _index_with_a_reader_version(shared_index, tmp_path)
    engine = Engine.open(root)
    listing = {entry.role: entry for entry in engine.models()}
    assert list(listing) == ["reader", "embedder", "reranker", "domain", "classifier", "generator"]
    reader = listing["reader"]
    assert reader.active is None and "none ships" in reader.base
    assert [(v.number, v.base, v.eval["F1"]) for v in reader.versions] == [(1, "enc", 20.0)]
    assert listing["embedder"].active is None and listing["embedder"].base == "all-MiniLM-L6-v2"
    engine.use_model("reader", 1)
    assert Registry(root).active_path("reader") == str(root.resolve() / "models" / "reader" / "1")
    assert {e.role: e.active for e in engine.models()}["reader"] == 1
    assert engine.rollback_model("reader") is None and Registry(root).active_path("reader") is None
    with pytest.raises(SixfoldError, match="reader@9"):
        engine.use_model("reader", 9)
    with pytest.raises(SixfoldError, match="unknown model role"):
        engine.use_model("ranker", 1)


def test_models_json_is_the_engine_listing(shared_index, tmp_path, cli):
    root = _index_with_a_reader_version(shared_index, tmp_path)
    code, out, err = cli("models", "--index", root, "--json")
    assert code == 0, err
    data = json.loads(out)
    reader = next(r for r in data["roles"] if r["role"] == "reader")
    assert reader["active"] is None and reader["versions"][0]["number"] == 1
    code, out, err = cli("models", "use", "reader@1", "--index", root)
    assert code == 0 and "reader: now using reader@1" in out, err


def test_a_bad_argument_is_exit_2_and_one_line_in_process_too(cli):
    """main() returns argparse's status instead of raising SystemExit, so callers (and the cli fixture) get a code."""
    code, _out, err = cli("complete", "Hello", "--max-tokens", "0")
    assert code == 2 and "positive" in assert_one_error_line(code, err, "--max-tokens")
    assert cli("--help")[0] == 0
