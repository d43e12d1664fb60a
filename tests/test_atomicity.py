"""Atomic commits: a run killed with SIGKILL leaves a usable index and the next run finishes the job."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sixfold import Engine
from sixfold.indexer.store import IndexSettings, IndexStore

from conftest import REPO, SQUAD_DEV, assert_one_error_line, cli_env, copy_index, current_generation, run_cli

N_FILES = 200
CHUNK_ARGS = ("--chunk-tokens", "32", "--chunk-overlap", "0")  # many small chunks: several commits, cheap to embed


def build_squad_folder(folder: Path) -> list[tuple[str, str]]:
    """~200 small .txt files, one SQuAD dev context each; returns (question, file) pairs for some of them."""
    data = json.loads(SQUAD_DEV.read_text(encoding="utf-8"))["data"]
    questions = []
    n = 0
    for article in data:
        for i, paragraph in enumerate(article["paragraphs"]):
            if n >= N_FILES:
                return questions
            rel = f"{article['title'][:24]}/p{i:03d}.txt"
            path = folder / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(paragraph["context"] + "\n", encoding="utf-8")
            if n % 50 == 7:
                questions.append((paragraph["qas"][0]["question"], rel))
            n += 1
    return questions


def rows(engine: Engine) -> list[tuple[str, str]]:
    return sorted(engine.snapshot().con.execute("SELECT path, text FROM chunks").fetchall())


def file_hashes(engine: Engine) -> dict[str, str]:
    return dict(engine.snapshot().con.execute("SELECT path, sha256 FROM files").fetchall())


def assert_consistent(engine: Engine) -> int:
    snapshot = engine.snapshot()
    n = snapshot.count_chunks()
    assert snapshot.vectors.ntotal == n
    assert snapshot.lexical.count() == n
    assert engine.status().chunks == n
    return n


@pytest.mark.skipif(not SQUAD_DEV.is_file(), reason=f"SQuAD dev set not found at {SQUAD_DEV}")
def test_kill_9_mid_index_then_rerun_equals_clean_index(tmp_path, embedder, cli):
    folder = tmp_path / "squad"
    questions = build_squad_folder(folder)
    index = tmp_path / "killed"
    proc = subprocess.Popen(
        [sys.executable, "-m", "sixfold", "index", str(folder), "--index", str(index), *CHUNK_ARGS, "--json"],
        cwd=REPO,
        env=cli_env(SIXFOLD_COMMIT_EVERY="50"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 240
        while not (index / "sixfold-index.json").exists():
            if proc.poll() is not None:
                pytest.fail(f"indexer ended (rc={proc.returncode}) before its first commit: {proc.stderr.read()}")
            if time.monotonic() > deadline:
                pytest.fail("no commit within 240 s")
            time.sleep(0.005)
        if proc.poll() is not None:
            pytest.skip("the indexer finished before it could be killed")
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL

    # The interrupted index opens, is consistent and holds only part of the corpus.
    partial = Engine.open(index)
    partial_chunks = assert_consistent(partial)
    partial_files = partial.status().documents
    assert 0 < partial_files < N_FILES
    rc, out, err = cli("status", "--index", index, "--json")
    assert rc == 0, err
    assert json.loads(out)["chunks"] == partial_chunks
    assert partial.search(questions[0][0], k=1), "the committed part is searchable"
    partial.close()

    # Re-run to completion: it adds only what the killed run had not committed, and cleans its leftovers.
    rc, out, err = cli("index", folder, "--index", index, "--json")
    assert rc == 0, err
    report = json.loads(out)
    assert report["added"] == N_FILES - partial_files
    assert report["unchanged"] == partial_files
    assert report["removed"] == 0 and report["updated"] == 0 and not report["skipped"]
    assert not list(index.glob("gen-*.tmp")), "the killed run's temporary generation was not cleaned"

    clean = Engine.open(tmp_path / "clean")
    clean.index(folder, chunk_tokens=32, overlap_tokens=0)
    resumed = Engine.open(index)
    assert assert_consistent(resumed) == assert_consistent(clean)
    assert resumed.status().documents == clean.status().documents == N_FILES
    assert rows(resumed) == rows(clean)
    assert file_hashes(resumed) == file_hashes(clean)
    for question, rel in questions:
        for mode in ("dense", "bm25", "hybrid"):
            a = resumed.search(question, k=1, mode=mode)[0]
            b = clean.search(question, k=1, mode=mode)[0]
            assert (a.path, a.text) == (b.path, b.text), (question, mode)
        assert resumed.search(question, k=1, mode="hybrid")[0].path.split("/")[0] == rel.split("/")[0], question
    resumed.close()
    clean.close()


def test_stale_tmp_generation_is_cleaned(shared_index, tmp_path):
    index = copy_index(shared_index.path, tmp_path / "index")
    stale = index / "gen-000099.tmp"
    (stale / "lexical").mkdir(parents=True)
    (stale / "chunks.duckdb").write_bytes(b"half-written")
    engine = Engine.open(index)
    report = engine.index(shared_index.corpus)
    assert report.touched == 0
    assert not stale.exists()
    assert not list(index.glob("gen-*.tmp"))
    assert engine.search("Who were the Normans descended from?", k=1)[0].path == "history/normans.md"
    engine.close()


def test_orphan_generation_from_kill_before_pointer_swap_does_not_block_commits(indexed):
    """A kill between renaming gen-N.tmp to gen-N and swapping the pointer leaves gen-N behind, unreferenced.

    The next run must still be able to commit (and must not trust the orphan).
    """
    current = current_generation(indexed.index)
    number = int(current.name.split("-")[1]) + 1
    orphan = indexed.index / f"gen-{number:06d}"
    shutil.copytree(current, orphan)
    (indexed.folder / "zorblax.txt").write_text("The zorblax reactor converts marmalade into quantum flapdoodle.\n")
    report = indexed.engine.index(indexed.folder)
    assert report.added == 1
    hits = indexed.engine.search("zorblax reactor marmalade", k=1, mode="bm25")
    assert hits and hits[0].path == "zorblax.txt"
    assert indexed.engine.status().documents == 7


def test_concurrent_writer_gets_clear_error(tmp_path, corpus_copy, embedder):
    index = tmp_path / "index"
    holder = IndexStore(index).begin(IndexSettings(model="all-MiniLM-L6-v2", dim=384))
    try:
        proc = run_cli("index", corpus_copy, "--index", index)
        assert_one_error_line(proc.returncode, proc.stderr, "another sixfold process is writing")
        assert not (index / "sixfold-index.json").exists()
    finally:
        holder.abort()
    # The lock is released with the writer: indexing works now.
    engine = Engine.open(index)
    assert engine.index(corpus_copy).added == 6
    engine.close()


def test_lock_is_released_after_a_failed_run(tmp_path, corpus_copy, embedder, cli):
    index = tmp_path / "index"
    empty = tmp_path / "empty"
    empty.mkdir()
    rc, _out, err = cli("index", empty, "--index", index)
    assert rc == 1 and "no files to index" in err
    holder = IndexStore(index).begin(IndexSettings(model="all-MiniLM-L6-v2", dim=384))  # must not raise
    holder.abort()


def test_readers_keep_working_while_a_writer_commits(indexed):
    reader = Engine.open(indexed.index)
    before = reader.search("Who were the Normans descended from?", k=1)[0]
    (indexed.folder / "history" / "normans.md").write_text("# Normans\n\nThe Normans liked zorblax marmalade.\n")
    indexed.engine.index(indexed.folder)
    after = reader.search("zorblax marmalade", k=1, mode="bm25")
    assert after and after[0].path == "history/normans.md", "a reader picks up the newly committed generation"
    assert before.path == "history/normans.md"
    reader.close()


def test_chunking_in_loader_thread_does_not_break_concurrent_embedding(embedder):
    """index_folder chunks files in a loader thread while the main thread embeds (pipeline._prepare_ahead), and it
    builds its Chunker on ``embedder.tokenizer`` (pipeline.py). So a Chunker built on the embedder's tokenizer must be
    usable while the embedder encodes; real runs of a few hundred files intermittently die with
    "ValueError: Unable to create tensor ..." when it is not."""
    import threading

    import numpy as np

    from sixfold.indexer.chunking import Chunker
    from sixfold.indexer.loaders import load_document

    from conftest import CORPUS

    documents = [load_document(p) for p in sorted(CORPUS.rglob("*")) if p.is_file()]
    chunker = Chunker(embedder.tokenizer, 32, 0)  # as index_folder builds it
    texts = [c.text for d in documents for c in chunker.split(d)][:64]
    batches = [texts[i : i + 8] for i in range(0, len(texts), 8)]
    expected = [embedder.encode(b) for b in batches]
    stop = threading.Event()

    def load_ahead() -> None:
        while not stop.is_set():
            for document in documents:
                chunker.split(document)

    thread = threading.Thread(target=load_ahead, daemon=True)
    thread.start()
    errors = []
    try:
        for _round in range(4):
            for batch, want in zip(batches, expected, strict=True):
                try:
                    got = embedder.encode(batch)
                except Exception as exc:  # seen in real runs: "ValueError: Unable to create tensor ..."
                    errors.append(f"{type(exc).__name__}: {str(exc)[:120]}")
                    break
                np.testing.assert_allclose(got, want, atol=1e-4)
            if errors:
                break
    finally:
        stop.set()
        thread.join()
    assert not errors, f"embedding failed while another thread chunked with the same tokenizer: {errors}"
