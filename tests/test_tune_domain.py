"""Domain-adaptive masked-LM training of the reader's encoder on the bundled corpus: real steps, a saved version a
reader can start from, bad input."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from transformers import AutoModel, TrainerCallback

from sixfold.core.errors import SixfoldError
from sixfold.core.models import DEFAULT_EMBEDDER, resolve_model
from sixfold.tuner.domain import DomainTrainConfig, split_documents, tune_domain
from sixfold.tuner.reader import ReaderTrainConfig, tune_reader
from sixfold.tuner.versions import Registry

from conftest import CORPUS, assert_one_error_line, copy_index

FIXTURES = Path(__file__).parent / "fixtures"


class _Losses(TrainerCallback):
    def __init__(self) -> None:
        self.runs: list[list[float]] = []

    def on_train_begin(self, args, state, control, **kwargs):
        self.runs.append([])

    def on_log(self, args, state, control, logs=None, **kwargs):
        if logs and "loss" in logs:
            self.runs[-1].append(float(logs["loss"]))


@pytest.fixture(scope="module")
def adapted(tmp_path_factory, shared_index):
    root = copy_index(shared_index.path, tmp_path_factory.mktemp("tune-domain") / "idx")
    losses = _Losses()
    config = DomainTrainConfig(max_steps=8, batch_size=8, learning_rate=1e-4)
    result = tune_domain(CORPUS, root, config=config, activate="yes", callbacks=[losses])
    return root, result, losses.runs


def test_masked_lm_loss_falls_and_is_scored_on_held_out_text(adapted):
    _root, result, runs = adapted
    assert len(runs) == 2  # the baseline (head only), then encoder + head
    full = runs[1]
    assert len(full) >= 4 and sum(full[-2:]) < sum(full[:2])
    assert result.eval_chunks >= 1 and result.train_chunks > result.eval_chunks
    for scores in (result.before, result.after):
        assert scores["loss"] > 0 and scores["perplexity"] > 1


def test_saved_version_is_an_encoder_with_changed_weights(adapted):
    root, result, _ = adapted
    assert Registry(root).load()["domain"]["active"] == result.version == 1
    tuned = AutoModel.from_pretrained(result.path, local_files_only=True)
    base = AutoModel.from_pretrained(resolve_model(DEFAULT_EMBEDDER).path, local_files_only=True)
    name = "encoder.layer.0.attention.self.query.weight"
    assert not torch.allclose(dict(tuned.named_parameters())[name], dict(base.named_parameters())[name])


def test_reader_tuning_starts_from_the_domain_version(adapted):
    root, _result, _ = adapted
    config = ReaderTrainConfig(max_steps=2, batch_size=8, max_length=192, stride=48)
    result = tune_reader(
        root, FIXTURES / "qa_train.jsonl", FIXTURES / "qa_eval.jsonl", base="domain@1", config=config, activate="no", eval_limit=6
    )
    assert result.base == str(Registry(root).root / "domain" / "1")
    assert (Path(result.path) / "config.json").is_file()


def test_missing_or_empty_corpus_is_one_error_line(tmp_path, shared_index, cli):
    code, _out, err = cli("tune", "domain", "--corpus", tmp_path / "nope", "--index", shared_index.path)
    assert_one_error_line(code, err, "does not exist")
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "blank.txt").write_text("   \n")
    code, _out, err = cli("tune", "domain", "--corpus", tmp_path / "empty", "--index", shared_index.path)
    assert_one_error_line(code, err, "no readable text")
    code, _out, err = cli(
        "tune",
        "reader",
        "--train",
        FIXTURES / "qa_train.jsonl",
        "--eval",
        FIXTURES / "qa_eval.jsonl",
        "--base",
        "domain@4",
        "--index",
        shared_index.path,
    )
    assert_one_error_line(code, err, "domain@4")


def test_documents_are_held_out_whole_when_there_are_enough():
    documents = [[f"doc{d} chunk{c}" for c in range(3)] for d in range(20)]
    train, evaluation = split_documents(documents, 0.1, seed=3)
    held = {t.split()[0] for t in evaluation}
    assert len(held) == 2 and len(evaluation) == 6 and not held & {t.split()[0] for t in train}
    with pytest.raises(SixfoldError, match="too small"):
        split_documents([["only one chunk"]], 0.1, seed=3)
