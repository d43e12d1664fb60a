"""Optional arguments of the public functions the type check found unhandled: None is a documented value or one
clear ``SixfoldError``, never a TypeError from deep inside."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sixfold.cli import build_parser
from sixfold.core.errors import SixfoldError
from sixfold.engine import Engine
from sixfold.eval.retrieval import reranker_training_queries
from sixfold.http.limits import Limits
from sixfold.http.schemas import inline_documents
from sixfold.reader.types import Passage
from sixfold.tuner.reader import ReaderTrainConfig

from .helpers import SmallIndex


def _pairs(folder: Path, n: int) -> Path:
    path = folder / "pairs.jsonl"
    rows = [{"query": f"what does passage {i} say?", "positive": f"passage {i} says this"} for i in range(n)]
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def test_reranker_queries_without_an_eval_limit_hold_out_the_share(small_index: SmallIndex, tmp_path: Path) -> None:
    # eval_limit=None was passed on as split_queries' cap: min(None, n) raised a TypeError
    train, dev = reranker_training_queries(small_index.store.root, pairs=_pairs(tmp_path, 40), eval_limit=None)
    assert (len(train), len(dev)) == (36, 4)  # RERANK_HOLDOUT = 10 %, no cap
    train, dev = reranker_training_queries(small_index.store.root, pairs=_pairs(tmp_path, 40), eval_limit=2)
    assert (len(train), len(dev)) == (38, 2)


def test_reranker_queries_need_a_beir_folder_or_a_pairs_file(small_index: SmallIndex) -> None:
    # neither: load_rerank_pairs(None) raised a TypeError from Path(None)
    with pytest.raises(SixfoldError, match="a BEIR folder .* or a pairs file"):
        reranker_training_queries(small_index.store.root)


def test_an_extractive_answer_without_a_reader_model_says_what_to_pass(tmp_path: Path) -> None:
    engine = Engine.open(tmp_path / "index")
    with pytest.raises(SixfoldError, match="extractive mode needs a question-answering model: pass --reader"):
        engine.answer("who?", [Passage(0, "Ada wrote it.", "notes.txt")], mode="extractive", reader=None)


def test_inline_documents_are_the_documents_or_none_for_the_index() -> None:
    assert inline_documents(["one", "two"], None) == ["one", "two"]
    assert inline_documents(None, None) is None
    assert inline_documents(None, "index") is None


def test_limits_read_any_mapping_of_the_environment() -> None:
    from types import MappingProxyType

    assert Limits.from_env(MappingProxyType({"SIXFOLD_MAX_PROMPTS": "3"})).max_prompts == 3


def test_tune_flags_take_their_defaults_from_the_role_config() -> None:
    reader = build_parser().parse_args(["tune", "reader", "--train", "t.json", "--eval", "e.json"])
    assert (reader.max_length, reader.epochs, reader.seed) == (
        ReaderTrainConfig.max_length,
        ReaderTrainConfig.epochs,
        ReaderTrainConfig.seed,
    )
    embedder = build_parser().parse_args(["tune", "embedder", "--pairs", "p.jsonl"])
    assert not hasattr(embedder, "max_length")  # the embedder trains without a --max-length
