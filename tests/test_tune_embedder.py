"""Tuning the embedder: real training steps on real pairs, re-embedding the index, rollback, bad data, failures.

Pairs are the SQuAD questions of tests/fixtures/qa_*.jsonl with their paragraphs (the corpus' topics).
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from sixfold.core.errors import SixfoldError
from sixfold.core.models import ResolvedModel, resolve_model
from sixfold.indexer.embedding import Embedder
from sixfold.indexer.store import IndexStore
from sixfold.tuner.data import Pair, hold_out, load_pairs, pair_overlap
from sixfold.tuner.embedder import EmbedderTrainConfig, tune_embedder
from sixfold.tuner.versions import Registry

from conftest import REPO, assert_one_error_line, cli_env, copy_index, current_generation
from training_callbacks import Losses, Steps, StopAt, Stopped

FIXTURES = Path(__file__).parent / "fixtures"


def qa_to_pairs(source: Path, dest: Path) -> Path:
    rows = [json.loads(line) for line in source.read_text().splitlines() if line.strip()]
    dest.write_text("".join(json.dumps({"query": r["question"], "passage": r["context"]}) + "\n" for r in rows))
    return dest


def mnrl_loss(embedder: Embedder, pairs: list[Pair]) -> float:
    """The training objective over all pairs at once: cross-entropy of each query against every passage."""
    passages = sorted({p.passage for p in pairs})
    q = embedder.encode([p.query for p in pairs])
    d = embedder.encode(passages)
    logits = 20.0 * q @ d.T
    logits -= logits.max(axis=1, keepdims=True)
    log_softmax = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    gold = [passages.index(p.passage) for p in pairs]
    return float(-np.mean(log_softmax[np.arange(len(pairs)), gold]))


def stored_vectors(index: Path) -> tuple[np.ndarray, np.ndarray, list[str]]:
    snapshot = IndexStore(index).open()
    try:
        ids, vectors = snapshot.embeddings()
        texts = [snapshot.chunks([int(i)])[int(i)]["text"] for i in ids]
        return ids, vectors, texts
    finally:
        snapshot.close()


@pytest.fixture(scope="module")
def pair_files(tmp_path_factory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("pairs")
    train = qa_to_pairs(FIXTURES / "qa_train.jsonl", folder / "train.jsonl")
    return train, qa_to_pairs(FIXTURES / "qa_eval.jsonl", folder / "eval.jsonl")


@pytest.fixture(scope="module")
def tuned(tmp_path_factory, shared_index, pair_files):
    """One short real training run (8 steps of batch 8) on a copy of the shared index, activated."""
    root = copy_index(shared_index.path, tmp_path_factory.mktemp("tune-embedder") / "idx")
    losses = Losses()
    config = EmbedderTrainConfig(max_steps=8, batch_size=8, learning_rate=5e-5)
    result = tune_embedder(root, load_pairs(pair_files[0]), pair_files[1], config=config, activate="yes", callbacks=[losses])
    return root, result, losses.losses


def test_training_lowers_the_loss_on_the_training_pairs(tuned, pair_files, embedder):
    _root, result, losses = tuned
    assert len(losses) >= 4 and all(np.isfinite(losses))
    pairs = load_pairs(pair_files[0])
    tuned_model = Embedder(ResolvedModel("tuned", result.path))
    assert mnrl_loss(tuned_model, pairs) < mnrl_loss(embedder, pairs)


def test_version_is_saved_scored_and_the_index_re_embedded_with_it(tuned, shared_index):
    root, result, _ = tuned
    assert result.version == 1 and result.activated and result.generation
    assert set(result.before) == set(result.after) == {"nDCG@10", "Recall@10"}
    assert result.eval_queries == 24 and result.overlap == {"queries": 0, "pairs": 0} and not result.synthetic_eval
    registry = Registry(root).load()["embedder"]
    assert registry["active"] == 1 and registry["base_model"] == "all-MiniLM-L6-v2"
    assert IndexStore(root).read_pointer()["model"] == "embedder@1"
    # every stored vector is the tuned model's embedding of its chunk, and differs from the base index's
    ids, vectors, texts = stored_vectors(root)
    base_ids, base_vectors, _ = stored_vectors(shared_index.path)
    assert np.array_equal(ids, base_ids)
    tuned_model = Embedder(ResolvedModel("tuned", result.path))
    assert np.allclose(vectors, tuned_model.encode(texts), atol=1e-4)
    assert not np.allclose(vectors, base_vectors, atol=1e-3)


def test_search_uses_the_tuned_model(tuned):
    from sixfold.engine import Engine

    root, _result, _ = tuned
    engine = Engine.open(root)
    try:
        assert engine.embedder.name == "embedder@1"
        hits = engine.search("Who were the Normans descended from?", k=3, mode="dense")
        assert hits and hits[0].path == "history/normans.md"
    finally:
        engine.close()


def test_rollback_restores_the_base_vectors_and_use_re_activates(tuned, shared_index, cli, tmp_path):
    root = copy_index(tuned[0], tmp_path / "idx")
    code, out, _ = cli("models", "--index", root)
    assert code == 0 and "embedder@1" in out
    code, _out, err = cli("models", "rollback", "embedder", "--index", root)
    assert code == 0, err
    assert IndexStore(root).read_pointer()["model"] == "all-MiniLM-L6-v2"
    _ids, vectors, _ = stored_vectors(root)
    _ids, base_vectors, _ = stored_vectors(shared_index.path)
    assert np.allclose(vectors, base_vectors, atol=1e-5)
    assert Registry(root).load()["embedder"]["active"] is None
    assert cli("models", "use", "embedder@1", "--index", root)[0] == 0
    assert IndexStore(root).read_pointer()["model"] == "embedder@1"


def test_unknown_version_is_one_error_line(tuned, cli):
    code, _out, err = cli("models", "use", "embedder@9", "--index", tuned[0])
    assert_one_error_line(code, err, "embedder@9")


def _run_cli(args: list[str], **popen) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "sixfold", *map(str, args)],
        cwd=REPO,
        env=cli_env(),
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        **popen,
    )


def test_killed_re_embed_leaves_the_old_index_readable(tuned, tmp_path):
    from sixfold.engine import Engine

    root = copy_index(tuned[0], tmp_path / "idx")
    before = current_generation(root)
    proc = _run_cli(["models", "use", "embedder@base", "--index", root])
    deadline = time.time() + 120
    while not list(root.glob("gen-*.tmp")) and proc.poll() is None and time.time() < deadline:
        time.sleep(0.01)
    assert proc.poll() is None, "the re-embed finished before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert current_generation(root) == before
    assert IndexStore(root).read_pointer()["model"] == "embedder@1"
    engine = Engine.open(root)
    try:
        assert engine.search("Who were the Normans descended from?", k=1, mode="dense")[0].path == "history/normans.md"
    finally:
        engine.close()


def _limit_file_size(limit: int):
    def apply() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # writes past the limit fail with EFBIG instead of killing us
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return apply


def assert_error_after_progress(returncode: int, stderr: str, *fragments: str) -> None:
    """Training ran (its progress bar is on stderr) and then failed: one error line, last, no traceback."""
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert returncode != 0 and "Traceback" not in stderr, stderr
    assert_one_error_line(returncode, lines[-1], *fragments)
    assert sum(line.startswith("error:") for line in lines) == 1, stderr


def test_disk_full_while_saving_keeps_the_active_model(tuned, pair_files, tmp_path):
    """A real write failure (file size limit: EFBIG) while the new version is saved: nothing changes."""
    root = copy_index(tuned[0], tmp_path / "idx")
    registry_before = (root / "models" / "registry.json").read_text()
    generation = current_generation(root)
    args = [
        "tune",
        "embedder",
        "--pairs",
        pair_files[0],
        "--eval",
        pair_files[1],
        "--index",
        root,
        "--max-steps",
        "1",
        "--batch-size",
        "4",
        "--activate",
        "yes",
    ]
    proc = _run_cli(args, preexec_fn=_limit_file_size(8 << 20))  # the model weights are ~90 MB
    _out, err = proc.communicate(timeout=600)
    assert_error_after_progress(proc.returncode, err, "could not save", "unchanged")
    assert (root / "models" / "registry.json").read_text() == registry_before
    assert sorted(p.name for p in (root / "models" / "embedder").iterdir()) == ["1"]
    assert current_generation(root) == generation and IndexStore(root).read_pointer()["model"] == "embedder@1"


def test_synthesized_pairs_are_labelled_and_the_report_says_so(shared_index, tmp_path):
    root = copy_index(shared_index.path, tmp_path / "idx")
    out_file = tmp_path / "synthetic.jsonl"
    args = [
        "tune",
        "embedder",
        "--synthesize",
        "6",
        "--synthetic-out",
        out_file,
        "--index",
        root,
        "--max-steps",
        "1",
        "--batch-size",
        "4",
        "--activate",
        "no",
        "--holdout",
        "0.34",
    ]
    proc = _run_cli(args)
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err
    rows = [json.loads(line) for line in out_file.read_text().splitlines()]
    assert 2 <= len(rows) <= 6 and all(r["synthetic"] is True and r["query"].endswith("?") and r["passage"] for r in rows)
    snapshot = IndexStore(root).open()
    texts = {r[0] for r in snapshot.con.execute("SELECT text FROM chunks").fetchall()}
    snapshot.close()
    assert all(r["passage"] in texts for r in rows)
    assert "SYNTHETIC" in out
    assert IndexStore(root).read_pointer()["model"] == "all-MiniLM-L6-v2"  # --activate no: not re-embedded


# ---- bad input ---------------------------------------------------------------------------------------
def test_bad_rows_are_named_by_line(tmp_path):
    path = tmp_path / "pairs.jsonl"
    path.write_text('{"query": "q1", "passage": "p1"}\n\n{"query": "q2"}\n')
    with pytest.raises(SixfoldError, match=r"line 3: missing or empty 'passage'"):
        load_pairs(path)
    path.write_text('{"query": "q1", "passage": "p1"}\n{oops\n')
    with pytest.raises(SixfoldError, match="line 2: not valid JSON"):
        load_pairs(path)
    path.write_text('["q", "p"]\n')
    with pytest.raises(SixfoldError, match="line 1: expected a JSON object"):
        load_pairs(path)


def test_empty_pairs_and_missing_eval_are_one_error_line(tmp_path, shared_index, pair_files, cli):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n")
    index = shared_index.path
    code, _out, err = cli("tune", "embedder", "--pairs", empty, "--index", index)
    assert_one_error_line(code, err, "empty")
    code, _out, err = cli("tune", "embedder", "--pairs", pair_files[0], "--eval", tmp_path / "nope.jsonl", "--index", index)
    assert_one_error_line(code, err, "does not exist")
    code, _out, err = cli("tune", "embedder", "--pairs", tmp_path / "missing.jsonl", "--index", index)
    assert_one_error_line(code, err, "does not exist")


def test_generated_text_that_is_not_a_question_is_dropped():
    from sixfold.tuner.synthesize import clean_question

    question = "What did the Normans do to the old aristocracy?"
    assert clean_question(f" {question} They ...") == question
    assert clean_question("Question: When was it built?\nAnswer: 1889") == "When was it built?"
    assert clean_question("The passage gives an overview of the dynasty.") is None
    assert clean_question('What is the answer to the question "What is the answer to') is None


def test_overlap_and_hold_out():
    train = [Pair("What is oxygen?", "Oxygen is element 8."), Pair("Who were the Normans?", "Norse raiders.")]
    evaluation = [Pair("what is  OXYGEN?", "Oxygen is element 8."), Pair("Who were the Normans?", "Another passage.")]
    assert pair_overlap(train, evaluation) == {"queries": 2, "pairs": 1}
    pairs = [Pair(f"q{i}", f"p{i}") for i in range(10)] + [Pair("q0", "p0 again")]
    kept, held = hold_out(pairs, 0.2, seed=1)
    assert len({p.query for p in held}) == 2 and not {p.query for p in kept} & {p.query for p in held}
    assert hold_out(pairs, 0.2, seed=1) == (kept, held)
    with pytest.raises(SixfoldError, match="at least 2 distinct queries"):
        hold_out([Pair("q", "p")], 0.2, seed=1)


@pytest.mark.skipif(os.environ.get("SIXFOLD_DEVICE", "").startswith("cuda"), reason="the guard applies without a GPU")
def test_a_model_too_big_for_cpu_is_refused_before_loading(tmp_path, shared_index, pair_files, cli):
    import torch
    from transformers import BertConfig

    if torch.cuda.is_available():
        pytest.skip("the guard applies without a GPU")
    big = tmp_path / "big-model"
    BertConfig(hidden_size=4096, num_hidden_layers=8, num_attention_heads=32, intermediate_size=16384).save_pretrained(big)
    (big / "vocab.txt").write_text("[PAD]\n")
    code, _out, err = cli(
        "tune",
        "reader",
        "--train",
        FIXTURES / "qa_train.jsonl",
        "--eval",
        FIXTURES / "qa_eval.jsonl",
        "--base",
        big,
        "--index",
        shared_index.path,
    )
    assert_one_error_line(code, err, "B parameters", "--force")
    assert not (shared_index.path / "models").exists()
    shutil.rmtree(big)


def test_interrupted_training_resumes_from_its_last_checkpoint(tmp_path, pair_files, embedder):
    """A run stopped after its step-2 checkpoint (an exception out of the trainer, as a Ctrl-C would be) leaves the
    checkpoint in the work folder; the same run again starts at step 3, not 1, and cleans the folder when done."""
    from sixfold.tuner.embedder import train_embedder
    from sixfold.tuner.training import latest_checkpoint

    pairs = load_pairs(pair_files[0])
    config = EmbedderTrainConfig(max_steps=5, batch_size=4, save_steps=2, max_seq_length=64)
    work, out = tmp_path / "work", tmp_path / "model"
    with pytest.raises(Stopped):
        train_embedder(embedder.path, pairs, work, out, config, callbacks=[StopAt(3)])
    assert (latest_checkpoint(work) or "").endswith("checkpoint-2")
    assert not out.exists()

    steps = Steps()
    train_embedder(embedder.path, pairs, work, out, config, callbacks=[steps])
    assert steps.seen == [3, 4, 5]
    assert (out / "config.json").is_file() and not work.exists()


# ---- BUG (issue 12): only Engine.embedder could load a tuned embedder; the server and tune reranker could not ----------
def test_tune_reranker_runs_on_an_index_whose_embedder_is_tuned(tuned, pair_files, cli, tmp_path):
    """The reranker mines its negatives with the index's own embedder: ``embedder@1`` here, not a hub name."""
    root = copy_index(tuned[0], tmp_path / "idx")
    pairs = tmp_path / "rerank-pairs.jsonl"
    rows = [json.loads(line) for line in pair_files[0].read_text().splitlines()]
    pairs.write_text("".join(json.dumps({"query": r["query"], "positive": r["passage"]}) + "\n" for r in rows))
    code, out, err = cli(
        "tune", "reranker", "--pairs", pairs, "--index", root, "--max-steps", "2", "--batch-size", "4",
        "--negatives", "2", "--max-length", "64", "--eval-limit", "3", "--activate", "no", "--json",
    )  # fmt: skip
    assert code == 0, err
    report = json.loads(out)
    assert report["version"] == 1 and report["eval_queries"] == 3 and 0.0 <= report["before"]["nDCG@10"] <= 1.0
    assert IndexStore(root).read_pointer()["model"] == "embedder@1"


def test_server_embeds_with_the_tuned_embedder(tuned):
    """The server's pool of embedder copies loads ``embedder@1`` from the index (it used to look for a model of that
    name and refuse to start): /v1/embeddings gives the Engine's vectors, /v1/search finds by them."""
    import httpx

    from sixfold.engine import Engine
    from sixfold.http import create_app
    from sixfold.indexer.embedding import index_embedder_model

    from live_server import LiveServer

    root = tuned[0]
    assert index_embedder_model(root).path == str(Registry(root).root / "embedder" / "1")
    query = "Who were the Normans descended from?"
    engine = Engine.open(root)
    try:
        expected = engine.embed([query])[0]
        expected_top = engine.search(query, k=1, mode="dense")[0]
    finally:
        engine.close()
    with LiveServer(create_app(root)) as live:
        got = httpx.post(
            live.url + "/v1/embeddings", json={"model": "embedder@1", "input": query, "encoding_format": "float"}, timeout=120
        )
        assert got.status_code == 200, got.text
        assert np.allclose(np.array(got.json()["data"][0]["embedding"]), expected, atol=1e-5)
        found = httpx.post(live.url + "/v1/search", json={"query": query, "mode": "dense", "max_rerank": 1}, timeout=120)
        assert found.status_code == 200, found.text
        assert found.json()["data"][0]["document"] == expected_top.chunk_id


def test_a_dual_index_tunes_its_english_half_and_keeps_reading_spanish(tmp_path, pair_files):
    """The dual MiniLM + USE embedder is tunable: the English half is trained, the multilingual half kept, and the
    tuned version is a dual model again (896-d, a Spanish question still reaches the English passage by USE)."""
    from sixfold.engine import Engine
    from sixfold.indexer.embedding import DUAL_EMBEDDER, DUAL_MARKER, DualEmbedder

    root = tmp_path / "idx"
    engine = Engine.open(root, model=DUAL_EMBEDDER)
    engine.index(shutil.copytree(REPO / "examples" / "corpus", tmp_path / "corpus"))
    engine.close()
    config = EmbedderTrainConfig(max_steps=4, batch_size=8, learning_rate=5e-5)
    result = tune_embedder(root, load_pairs(pair_files[0]), pair_files[1], config=config, activate="yes")
    assert result.activated and (Path(result.path) / DUAL_MARKER).is_file()
    assert Registry(root).load()["embedder"]["base_model"] == DUAL_EMBEDDER
    engine = Engine.open(root)
    try:
        assert isinstance(engine.embedder, DualEmbedder) and engine.embedder.dim == 896
        assert engine.embedder.name == "embedder@1"
        base_english = Embedder(resolve_model("all-MiniLM-L6-v2"))
        text = ["Who were the Normans descended from?"]
        assert not np.allclose(engine.embedder.english.encode(text), base_english.encode(text), atol=1e-3)
        hits = engine.search("¿De quiénes descendían los normandos?", k=3, mode="dense")
        assert hits and hits[0].path == "history/normans.md"
    finally:
        engine.close()


def test_a_running_server_follows_the_embedder_another_process_switches_to(tuned, cli, tmp_path):
    """``models rollback embedder`` re-embeds the index while a server runs: the server's queries then embed with the
    base model (its pool of copies was once kept from start, so every dense search used the retired model)."""
    import httpx

    from sixfold.engine import Engine
    from sixfold.http import create_app

    from live_server import LiveServer

    root = copy_index(tuned[0], tmp_path / "idx")
    query = "Who were the Normans descended from?"
    with LiveServer(create_app(root)) as live:
        tuned_vector = httpx.post(
            live.url + "/v1/embeddings", json={"model": "embedder@1", "input": query, "encoding_format": "float"}, timeout=120
        ).json()["data"][0]["embedding"]
        code, _out, err = cli("models", "rollback", "embedder", "--index", root)
        assert code == 0, err
        engine = Engine.open(root)
        try:
            assert engine.embedder.name == "all-MiniLM-L6-v2"
            expected = engine.embed([query])[0]
            expected_top = [h.chunk_id for h in engine.search(query, k=3, mode="dense")]
        finally:
            engine.close()
        assert not np.allclose(np.array(tuned_vector), expected, atol=1e-3), "the tuned model embeds differently"
        got = httpx.post(
            live.url + "/v1/embeddings",
            json={"model": "all-MiniLM-L6-v2", "input": query, "encoding_format": "float"},
            timeout=120,
        )
        assert got.status_code == 200, got.text
        assert np.allclose(np.array(got.json()["data"][0]["embedding"]), expected, atol=1e-5)
        found = httpx.post(live.url + "/v1/search", json={"query": query, "mode": "dense", "max_rerank": 3}, timeout=120)
        assert found.status_code == 200, found.text
        assert [d["document"] for d in found.json()["data"]] == expected_top
