"""sixfold tune classifier: a real SetFit-style run (the packaged MiniLM tuned a few steps on contrastive pairs, a
scikit-learn head) saved as classifier@N in a real index; classify, the CLI and the server use it; zero-shot labels.

The runs are tiny (a few steps): they prove the path, not the accuracy; bench/peer_setfit.py measures that."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from test_classify import OBVIOUS, ROWS, write_csv

from sixfold import Engine
from sixfold.core.errors import SixfoldError
from sixfold.reader.classify import LinearHead, TunedClassifier
from sixfold.tuner.classifier import ClassifierTrainConfig, tune_classifier
from sixfold.tuner.versions import Registry

from conftest import assert_one_error_line, copy_index, run_cli
from training_callbacks import Steps

TINY = ClassifierTrainConfig(batch_size=8, max_steps=4)


@pytest.fixture(scope="module")
def tuned(_pristine_index, tmp_path_factory):
    """A private index with classifier@1 trained on the test_classify examples (held-out share scored), active."""
    from sixfold.reader.types import LabeledExample

    index = copy_index(_pristine_index[1], tmp_path_factory.mktemp("tune-classifier") / "index")
    examples = [LabeledExample(text, label, line=n) for n, (text, label) in enumerate(ROWS, start=1)]
    steps = Steps()
    result = tune_classifier(index, examples, config=TINY, activate="yes", callbacks=[steps])
    assert steps.seen[-1] == TINY.max_steps  # max_steps, not the one epoch 9 examples make, decides the length
    return index, result


def test_the_version_lands_in_the_registry_with_its_labels_and_scores(tuned):
    index, result = tuned
    assert (result.role, result.version, result.activated) == ("classifier", 1, True)
    assert result.labels == sorted({label for _, label in ROWS})
    assert 0.0 <= result.before["accuracy"] <= 1.0 and 0.0 <= result.after["accuracy"] <= 1.0
    assert result.eval_examples == 3 and result.train_examples == len(ROWS) - 3  # one per label held out
    entry = Registry(index).load()["classifier"]
    assert entry["active"] == 1 and entry["versions"]["1"]["labels"] == result.labels
    folder = Registry(index).version_dir("classifier", 1)
    assert (folder / "body" / "config.json").is_file() and (folder / "head.npz").is_file()
    head = LinearHead.load(folder / "head.npz")
    assert head.labels == result.labels and head.weights.shape[0] == len(result.labels)


def test_the_head_gives_a_distribution_over_the_labels(tuned):
    index, _ = tuned
    tuned_classifier = TunedClassifier.load(Registry(index).version_dir("classifier", 1))
    labels = tuned_classifier.classify([q for q, _ in OBVIOUS])
    for label in labels:
        assert abs(sum(label.scores.values()) - 1.0) < 1e-4 and label.score == max(label.scores.values())
        assert label.decided_by and label.examples  # the nearest of its own examples are shown


def test_classify_uses_the_active_classifier_for_its_labels_only(tuned, tmp_path):
    index, _ = tuned
    engine = Engine.open(index)
    queries = [q for q, _ in OBVIOUS]
    by_tuned = engine.classify(queries)  # no examples: the active classifier
    assert {r.decided_by for r in by_tuned} == {"classifier@1"}
    same_labels = engine.classify(queries, write_csv(tmp_path / "same.csv", ROWS))
    assert {r.decided_by for r in same_labels} == {"classifier@1"}
    other = [("I love this film", "positive"), ("great acting", "positive"), ("a dull plot", "negative"), ("boring", "negative")]
    by_examples = engine.classify(["what a wonderful movie"], write_csv(tmp_path / "other.csv", other))
    assert by_examples[0].decided_by.startswith("nearest examples") and by_examples[0].label in {"positive", "negative"}
    base = engine.classify(queries, write_csv(tmp_path / "same2.csv", ROWS), classifier="base")
    assert {r.decided_by for r in base} == {f"nearest examples ({engine.embedder.name})"}
    assert [r.label for r in base] == [expected for _, expected in OBVIOUS]
    with pytest.raises(SixfoldError, match="no version classifier@7"):
        engine.classify(queries, classifier="classifier@7")


def test_zero_shot_from_label_names_needs_no_examples(shared_index):
    engine = Engine.open(shared_index.path)
    labels = engine.classify(
        ["Will it snow in the mountains tonight?", "The striker scored twice in the final"],
        labels="weather: the weather forecast, rain, snow, temperature; sports: a sports match, a team, goals",
    )
    assert [r.label for r in labels] == ["weather", "sports"]
    assert labels[0].decided_by.startswith("zero-shot") and labels[0].examples == []
    with pytest.raises(SixfoldError, match="at least two labels"):
        engine.classify(["x"], labels="weather")


def test_cli_trains_lists_and_classifies_with_the_tuned_version(tuned, tmp_path):
    index = copy_index(tuned[0], tmp_path / "index")
    examples = write_csv(tmp_path / "examples.csv", ROWS)
    trained = run_cli(
        "tune", "classifier", "--examples", str(examples), "--eval", str(examples), "--index", str(index),
        "--max-steps", "2", "--batch-size", "8", "--objective", "pairs", "--pairs-per-example", "1", "--activate", "no",
        "--json",
    )  # fmt: skip
    assert trained.returncode == 0, trained.stderr
    report = json.loads(trained.stdout)
    assert report["version"] == 2 and report["activated"] is False and report["eval_examples"] == len(ROWS)
    assert report["train_rows"] == 2 * len(ROWS)  # pairs: one same-label and one other-label partner each
    listed = run_cli("models", "--index", str(index), "--json")
    roles = {r["role"]: r for r in json.loads(listed.stdout)["roles"]}
    assert roles["classifier"]["active"] == 1 and [v["number"] for v in roles["classifier"]["versions"]] == [1, 2]
    out = run_cli("classify", OBVIOUS[0][0], "--index", str(index), "--classifier", "classifier@2", "--json")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)[0]["decided_by"] == "classifier@2"
    table = run_cli("classify", OBVIOUS[2][0], "--index", str(index))
    assert table.returncode == 0 and "classifier@1" in table.stdout


def test_cli_errors_are_one_line(tuned, tmp_path):
    nothing = run_cli("classify", "some text")
    assert_one_error_line(nothing.returncode, nothing.stderr, "nothing to classify with")
    unknown = run_cli("classify", "some text", "--index", str(tuned[0]), "--classifier", "classifier@9")
    assert_one_error_line(unknown.returncode, unknown.stderr, "classifier@9")
    one_label = run_cli("classify", "some text", "--labels", "weather")
    assert_one_error_line(one_label.returncode, one_label.stderr, "at least two labels")
    single = write_csv(tmp_path / "single.csv", [("a", "x"), ("b", "x")])
    refused = run_cli("tune", "classifier", "--examples", str(single), "--index", str(tuned[0]))
    assert_one_error_line(refused.returncode, refused.stderr, "only one label")


def test_a_failed_save_leaves_the_active_version(tuned, tmp_path, monkeypatch):
    """A run that dies while training leaves no half version, and the active classifier stays."""
    import sixfold.tuner.classifier as module
    from sixfold.reader.types import LabeledExample

    index = copy_index(tuned[0], tmp_path / "index")

    def broken(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(module, "train_body", broken)
    examples = [LabeledExample(text, label) for text, label in ROWS]
    with pytest.raises(SixfoldError, match="could not save the tuned classifier"):
        tune_classifier(index, examples, config=TINY, activate="yes")
    registry = Registry(index)
    assert registry.load()["classifier"]["active"] == 1 and list(registry.load()["classifier"]["versions"]) == ["1"]
    assert not list((registry.root / "classifier").glob("*.tmp"))
    shutil.rmtree(index)


def test_eval_classify_tune_scores_both(tmp_path, cli):
    train = write_csv(tmp_path / "train.csv", ROWS)
    test = write_csv(tmp_path / "test.csv", OBVIOUS)
    rc, out, err = cli(
        "eval", "classify", "--train", train, "--test", test, "--tune", "--max-steps", "3", "--json",
        "--out", tmp_path / "report.json",
    )  # fmt: skip
    assert rc == 0, err
    report = json.loads(out)
    assert report["accuracy"] == 1.0  # nearest examples, as test_classify checks
    tuned = report["tuned"]
    assert 0.0 <= tuned["accuracy"] <= 1.0 and tuned["train_rows"] == len(ROWS) and tuned["train_seconds"] > 0
    assert np.isfinite(tuned["macro_f1"])


def test_the_server_classifies_with_the_tuned_version_and_zero_shot(tuned):
    import httpx

    from sixfold.http import create_app

    from live_server import LiveServer

    with LiveServer(create_app(tuned[0], warm=False, embedders=1)) as server:
        models = {m["id"]: m for m in httpx.get(server.url + "/v1/models").json()["data"]}
        assert models["classifier@1"]["active"] is True and models["classifier@base"]["active"] is False

        def post(body: dict) -> httpx.Response:
            return httpx.post(server.url + "/v1/classifications", json=body, timeout=120)

        by_active = post({"query": OBVIOUS[0][0]}).json()  # no examples: the active classifier
        assert by_active["model"] == by_active["decided_by"] == "classifier@1"
        assert set(by_active["scores"]) == {label for _, label in ROWS}
        assert by_active["selected_examples"] and by_active["label"] in by_active["scores"]
        named = post({"query": OBVIOUS[2][0], "model": "classifier@1", "return_prompt": True}).json()
        assert named["model"] == "classifier@1" and "Category:" in named["prompt"]
        base = post({"query": OBVIOUS[2][0], "model": "classifier@base", "examples": [list(r) for r in ROWS]}).json()
        assert base["model"] == "classifier@base" and base["decided_by"].startswith("nearest examples")
        assert base["label"] == OBVIOUS[2][1]
        zero = post({"query": "Will it snow in the mountains tonight?", "labels": ["weather forecast", "football match"]})
        assert zero.status_code == 200 and zero.json()["label"] == "weather forecast", zero.text
        assert zero.json()["decided_by"].startswith("zero-shot") and zero.json()["selected_examples"] == []
        missing = post({"query": "x", "model": "classifier@5"})
        assert missing.status_code == 404 and missing.json()["error"]["code"] == "model_not_found"
        one = post({"query": "x", "labels": ["only"]})
        assert one.status_code == 400 and "at least two labels" in one.json()["error"]["message"]
