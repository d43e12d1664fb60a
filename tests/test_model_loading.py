"""Every role's model loads through one helper (``sixfold.core.loading.quiet_loading``): a model folder that does not
load is one error line naming the role and the model, whichever role it is, and the libraries' warnings stay quiet."""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable
from pathlib import Path

import pytest

from sixfold.core.errors import SixfoldError
from sixfold.core.loading import quiet, quiet_loading
from sixfold.core.models import ResolvedModel
from sixfold.indexer.embedding import Embedder
from sixfold.reader.extractive import ExtractiveReader
from sixfold.reader.llm import CausalLM
from sixfold.retriever.rerank import Reranker
from sixfold.tuner.data import Pair
from sixfold.tuner.embedder import train_embedder
from sixfold.tuner.reranker import RerankerTrainConfig, train_reranker

from conftest import CORPUS, assert_one_error_line


def _broken_model(tmp_path: Path) -> Path:
    """A model folder whose config.json is not JSON (a download cut short)."""
    folder = tmp_path / "broken-model"
    folder.mkdir()
    (folder / "config.json").write_text('{"model_type": "bert", "hidden_si')
    (folder / "tokenizer_config.json").write_text("{")
    return folder


LOADERS = {
    "embedding model": lambda path: Embedder(ResolvedModel("broken", str(path)), "cpu"),
    "reranker model": lambda path: Reranker("broken", str(path), "cpu"),
    "extractive reader": lambda path: ExtractiveReader("broken", str(path), "cpu"),
    "language model": lambda path: CausalLM(ResolvedModel("broken", str(path)), "cpu"),
}


@pytest.mark.parametrize("role", list(LOADERS))
def test_a_model_folder_that_does_not_load_is_one_error_naming_role_and_model(tmp_path, role):
    folder = _broken_model(tmp_path)
    message = _quiet_error(lambda: LOADERS[role](folder))
    assert message.startswith(f"cannot load {role} broken: "), message


def _quiet_error(call: Callable[[], object]) -> str:
    """The one-line SixfoldError that ``call`` raises, checked to come with no warnings and no chained traceback."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(SixfoldError) as raised:
            call()
    message = str(raised.value)
    assert "\n" not in message.strip()
    assert raised.value.__cause__ is None and raised.value.__suppress_context__  # no chained traceback
    assert not caught, [str(w.message) for w in caught]
    return message


def test_quiet_loading_passes_a_sixfold_error_through_unchanged():
    """A SixfoldError raised while loading already speaks to the user: it is not wrapped in 'cannot load ...'."""
    with pytest.raises(SixfoldError) as raised:
        with quiet_loading("language model", "m", "transformers"):
            raise SixfoldError("the GGUF file is truncated")
    assert str(raised.value) == "the GGUF file is truncated"


def test_index_with_a_broken_embedding_model_is_one_error_line(tmp_path, cli):
    folder = _broken_model(tmp_path)
    rc, _out, err = cli("index", CORPUS, "--index", tmp_path / "index", "--model", folder)
    assert_one_error_line(rc, err, "cannot load embedding model", str(folder))
    assert not (tmp_path / "index" / "sixfold-index.json").exists()


TRAINERS = {
    "embedding model": lambda path, out: train_embedder(str(path), [Pair("q", "p")], out / "work", out / "saved"),
    "reranker model": lambda path, out: train_reranker([("q", "p", 1.0)], str(path), out / "saved", RerankerTrainConfig()),
}


@pytest.mark.parametrize("role", list(TRAINERS))
def test_a_base_model_that_does_not_load_for_training_is_one_error_line(tmp_path, role):
    """The tuners load their base model through the same helper (tuner/embedder.py, tuner/reranker.py)."""
    folder = _broken_model(tmp_path)
    message = _quiet_error(lambda: TRAINERS[role](folder, tmp_path))
    assert message.startswith(f"cannot load {role} {folder}: "), message
    assert not (tmp_path / "saved").exists()


def test_quiet_silences_warnings_and_the_library_logger():
    logger = logging.getLogger("sixfold-test-quiet")
    logger.setLevel(logging.INFO)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with quiet("sixfold-test-quiet"):
            warnings.warn("not the user's to act on", UserWarning, stacklevel=1)
    assert not caught and logger.level == logging.ERROR
