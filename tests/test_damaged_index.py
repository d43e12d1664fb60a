"""Damaged, read-only, full or busy index folders: repair or fall back, say so, and never lose what is indexed.

Everything is real: the damage is done to the files on disk (a deleted pointer, a truncated DuckDB, a missing
tantivy folder), the read-only folder is a read-only bind mount and the full disk a small tmpfs (the suite runs as
root, where ``chmod a-w`` stops nothing; both tests skip when ``mount`` is not allowed).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import pytest

from sixfold import Engine
from sixfold.core.errors import SixfoldError
from sixfold.indexer.store import IndexStore

from conftest import REPO, SQUAD_DEV, assert_one_error_line, cli_env, copy_index, current_generation, run_cli

QUESTION = "Who were the Normans descended from?"
ZORBLAX = "The zorblax reactor converts marmalade into quantum flapdoodle at room temperature.\n"


def two_generations(indexed) -> tuple[Path, Path]:
    """The indexed corpus plus one file committed on top: (older generation, current generation)."""
    older = current_generation(indexed.index)
    (indexed.folder / "zorblax.txt").write_text(ZORBLAX)
    assert indexed.engine.index(indexed.folder).added == 1
    indexed.engine.close()
    current = current_generation(indexed.index)
    assert older.is_dir() and current.name > older.name
    return older, current


def bm25_paths(engine: Engine, query: str, k: int = 3) -> list[str]:
    return [h.path for h in engine.search(query, k=k, mode="bm25", rerank=None)]


def status_json(cli, index: Path) -> tuple[int, dict, str]:
    rc, out, err = cli("status", "--index", index, "--json")
    return rc, json.loads(out), err


def generation_names(index: Path) -> list[str]:
    return sorted(p.name for p in index.glob("gen-*"))


# ---- 1. the pointer file is lost -----------------------------------------------------------------------
def test_lost_pointer_recovers_the_newest_generation_without_reembedding(indexed, cli, caplog):
    older, current = two_generations(indexed)
    (indexed.index / "sixfold-index.json").unlink()

    proc = run_cli("status", "--index", indexed.index)  # a real CLI: the warning reaches the user on stderr
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    assert f"using the newest readable generation {current.name}" in proc.stderr
    assert "problem: sixfold-index.json is missing" in proc.stderr

    engine = Engine.open(indexed.index)
    assert bm25_paths(engine, "zorblax reactor marmalade", 1) == ["zorblax.txt"]  # the newest one, not the older
    with caplog.at_level(logging.WARNING, logger="sixfold.index"):
        report = engine.index(indexed.folder)
    engine.close()
    assert (report.added, report.updated, report.removed, report.unchanged) == (0, 0, 0, 7), "nothing is re-embedded"
    assert any("sixfold-index.json is missing" in r and current.name in r for r in report.repaired), report.repaired
    assert current.is_dir(), "the generation it recovered from is kept"
    assert json.loads((indexed.index / "sixfold-index.json").read_text())["generation"] > current.name
    rc, status, err = status_json(cli, indexed.index)
    assert rc == 0 and status["health"] == [] and status["documents"] == 7, err


def test_lost_pointer_cli_index_says_what_it_repaired(indexed, cli):
    _older, current = two_generations(indexed)
    (indexed.index / "sixfold-index.json").unlink()
    rc, out, err = cli("index", indexed.folder, "--index", indexed.index)
    assert rc == 0, err
    assert "nothing changed: 7 files up to date" in out
    assert f"repaired: sixfold-index.json is missing: made {current.name}" in out


# ---- 2. the current generation cannot be read ----------------------------------------------------------
def damage_current(index: Path, current: Path, how: str) -> None:
    if how == "garbage-pointer":
        (index / "sixfold-index.json").write_text("{not json at all")
    elif how == "generation-deleted":
        shutil.rmtree(current)
    elif how == "duckdb-truncated":
        db = current / "chunks.duckdb"
        db.write_bytes(db.read_bytes()[:1000])
    else:
        raise AssertionError(how)


@pytest.mark.parametrize("how", ["garbage-pointer", "generation-deleted", "duckdb-truncated"])
def test_unreadable_current_generation_falls_back_to_the_older_one(indexed, cli, caplog, how):
    older, current = two_generations(indexed)
    damage_current(indexed.index, current, how)
    fallback = current.name if how == "garbage-pointer" else older.name  # a garbled pointer names nothing

    proc = run_cli("status", "--index", indexed.index, "--json")
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    warnings = [line for line in proc.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and f"using the newest readable generation {fallback}" in warnings[0], proc.stderr
    status = json.loads(proc.stdout)
    assert status["generation"] == fallback and status["health"], status

    with caplog.at_level(logging.WARNING, logger="sixfold.index"):
        rc, out, err = cli("search", QUESTION, "--index", indexed.index, "--json", "-k", "1")
    assert rc == 0, err
    assert json.loads(out)["hits"][0]["path"] == "history/normans.md"
    assert any(f"generation {fallback}" in r.getMessage() for r in caplog.records)

    engine = Engine.open(indexed.index)
    report = engine.index(indexed.folder)  # continues from the fallback and commits a good pointer
    assert report.repaired and report.generation
    assert report.added == (0 if fallback == current.name else 1)  # the older generation lacks zorblax.txt
    assert bm25_paths(engine, "zorblax reactor marmalade", 1) == ["zorblax.txt"]
    engine.close()
    assert json.loads((indexed.index / "sixfold-index.json").read_text())["generation"] == report.generation
    rc, status, err = status_json(cli, indexed.index)
    assert rc == 0 and status["health"] == [], err
    assert fallback in generation_names(indexed.index), "the generation it continued from is kept"


def test_no_readable_generation_is_one_clear_error_and_nothing_is_deleted(indexed, cli):
    older, current = two_generations(indexed)
    for generation in (older, current):
        (generation / "chunks.duckdb").write_bytes(os.urandom(4096))
    before = generation_names(indexed.index)
    for args in (("status",), ("search", QUESTION), ("index", indexed.folder)):
        rc, _out, err = cli(*args, "--index", indexed.index)
        line = assert_one_error_line(rc, err, "corrupt", "no other generation can be read", "new --index folder")
        assert older.name in line and current.name in line
    assert generation_names(indexed.index) == before
    assert (indexed.index / "sixfold-index.json").is_file()


# ---- 3. the lexical index is damaged --------------------------------------------------------------------
def damage_lexical(lexical: Path, how: str) -> None:
    if how == "deleted":
        shutil.rmtree(lexical)
    elif how == "meta-corrupt":
        (lexical / "meta.json").write_text("garbage{")
    else:
        raise AssertionError(how)


@pytest.mark.parametrize("how", ["deleted", "meta-corrupt"])
def test_damaged_lexical_index_is_rebuilt_from_duckdb(indexed, cli, caplog, how):
    queries = [QUESTION, "atomic number of oxygen", "steam engine heat work", "packet switching"]
    expected = {q: [(h.path, h.chunk_id, round(h.score, 4)) for h in indexed.engine.search(q, k=5, mode="bm25")] for q in queries}
    indexed.engine.close()
    damage_lexical(current_generation(indexed.index) / "lexical", how)

    engine = Engine.open(indexed.index)  # a reader: rebuilt in memory, the same ranking, and a warning
    with caplog.at_level(logging.WARNING, logger="sixfold.index"):
        for q in queries:
            assert [(h.path, h.chunk_id, round(h.score, 4)) for h in engine.search(q, k=5, mode="bm25")] == expected[q]
    assert any("lexical/" in r.getMessage() and "sixfold index" in r.getMessage() for r in caplog.records)
    engine.close()
    rc, status, _err = status_json(cli, indexed.index)
    assert rc == 1 and any("lexical/" in p for p in status["health"]), status["health"]

    rc, out, err = cli("index", indexed.folder, "--index", indexed.index)  # a writer: rebuilt for good
    assert rc == 0, err
    assert "repaired: rebuilt lexical/" in out
    rc, status, err = status_json(cli, indexed.index)
    assert rc == 0 and status["health"] == [], err
    engine = Engine.open(indexed.index)
    assert engine.snapshot().lexical.count() == engine.snapshot().count_chunks()
    assert {q: [(h.path, round(h.score, 4)) for h in engine.search(q, k=5, mode="bm25")] for q in queries} == {
        q: [(p, s) for p, _i, s in hits] for q, hits in expected.items()
    }
    engine.close()


# ---- 4. status checks what search needs -----------------------------------------------------------------
def test_status_of_a_healthy_index(shared_index, cli):
    rc, status, err = status_json(cli, shared_index.path)
    assert rc == 0 and status["health"] == [], err


@pytest.mark.parametrize("how", ["truncated", "deleted"])
def test_status_reports_damaged_vectors_and_index_repairs_them(shared_index, tmp_path, cli, how):
    index = copy_index(shared_index.path, tmp_path / "index")
    faiss_file = current_generation(index) / "vectors.faiss"
    if how == "truncated":
        faiss_file.write_bytes(faiss_file.read_bytes()[: faiss_file.stat().st_size // 2])
    else:
        faiss_file.unlink()
    rc, status, _err = status_json(cli, index)
    assert rc == 1
    assert any("vectors.faiss" in p and "sixfold index" in p for p in status["health"]), status["health"]
    rc, out, err = cli("status", "--index", index)
    assert rc == 1 and "problem: vectors.faiss" in err and "documents" in out

    rc, out, err = cli("index", shared_index.corpus, "--index", index)
    assert rc == 0, err
    assert "repaired: rebuilt vectors.faiss" in out
    rc, status, err = status_json(cli, index)
    assert rc == 0 and status["health"] == [], err


# ---- 5. a read-only index folder -------------------------------------------------------------------------
@contextmanager
def mounted(*args: str, target: Path):
    target.mkdir(parents=True, exist_ok=True)
    steps = [["mount", *a, str(target)] for a in args]
    done = 0
    try:
        for step in steps:
            proc = subprocess.run(step, capture_output=True, text=True)
            if proc.returncode != 0:
                pytest.skip(f"cannot {' '.join(step)}: {proc.stderr.strip() or proc.returncode}")
            done += 1
        yield target
    finally:
        if done:
            subprocess.run(["umount", str(target)], capture_output=True)
            if os.path.ismount(target):
                subprocess.run(["umount", "-l", str(target)], capture_output=True)


def test_read_only_index_serves_search_and_status(shared_index, tmp_path, cli):
    index = copy_index(shared_index.path, tmp_path / "index")
    with mounted(["--bind", str(index)], ["-o", "remount,bind,ro"], target=tmp_path / "ro") as ro:
        probe = ro / "probe"
        with pytest.raises(OSError):
            probe.write_text("x")
        rc, status, err = status_json(cli, ro)
        assert rc == 0 and status["health"] == [] and status["documents"] == 6, err
        for mode in ("bm25", "hybrid"):
            rc, out, err = cli("search", QUESTION, "--index", ro, "--mode", mode, "--json", "-k", "1")
            assert rc == 0, err
            assert json.loads(out)["hits"][0]["path"] == "history/normans.md"
        rc, _out, err = cli("index", shared_index.corpus, "--index", ro)
        assert_one_error_line(rc, err, "cannot write the index", "read-only file system")


# ---- 6. the disk fills up --------------------------------------------------------------------------------
def squad_files(folder: Path, n: int, start: int = 0) -> list[tuple[str, str]]:
    """``n`` small .txt files, one SQuAD dev context each (from the ``start``-th); returns (file, first question)."""
    data = json.loads(SQUAD_DEV.read_text(encoding="utf-8"))["data"]
    paragraphs = [(a["title"][:24], i, p) for a in data for i, p in enumerate(a["paragraphs"])][start : start + n]
    out = []
    for title, i, paragraph in paragraphs:
        rel = f"{title}/p{i:03d}.txt"
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        (folder / rel).write_text(paragraph["context"] + "\n", encoding="utf-8")
        out.append((rel, paragraph["qas"][0]["question"]))
    return out


@pytest.mark.skipif(not SQUAD_DEV.is_file(), reason=f"SQuAD dev set not found at {SQUAD_DEV}")
@pytest.mark.parametrize(("size", "n_files"), [("3m", 1), ("5m", 150)], ids=["copy-fails", "growth-fails"])
def test_full_disk_is_one_clear_error_and_frees_the_temporary_generation(shared_index, tmp_path, cli, size, n_files):
    """The first index (~1.9 MB) fits; its copy (3m) or the grown next generation (5m) does not."""
    more = tmp_path / "more"
    squad_files(more, n_files)
    with mounted(["-t", "tmpfs", "-o", f"size={size}", "tmpfs"], target=tmp_path / "disk") as disk:
        index = copy_index(shared_index.path, disk / "index")
        before = current_generation(index).name
        rc, _out, err = cli("index", more, "--index", index, "--json")  # --json: no progress bar beside the error
        assert_one_error_line(rc, err, f"no space left on device at {index}")
        assert not list(index.glob("gen-*.tmp")), "the temporary generation still holds the disk"
        assert not (index / "sixfold-index.json.tmp").exists()
        assert current_generation(index).name == before
        rc, status, err = status_json(cli, index)
        assert rc == 0 and status["health"] == [] and status["documents"] == 6, err
        rc, out, err = cli("search", QUESTION, "--index", index, "--json", "-k", "1")
        assert rc == 0 and json.loads(out)["hits"][0]["path"] == "history/normans.md", err


# ---- 7. an incremental index ranks exactly as a clean build ----------------------------------------------
def top(engine: Engine, query: str, mode: str, k: int) -> list[tuple[tuple[str, int], float]]:
    snapshot = engine.snapshot()
    hits = engine.search(query, k=k, mode=mode, rerank=None)
    index_of = dict(
        snapshot.con.execute(
            "SELECT chunk_id, chunk_index FROM chunks WHERE chunk_id IN (SELECT unnest($ids))",
            {"ids": [h.chunk_id for h in hits]},
        ).fetchall()
    )
    return [((h.path, index_of[h.chunk_id]), h.score) for h in hits]


def same_ranking(a: Engine, b: Engine, query: str, mode: str, k: int = 10, tol: float = 1e-5) -> bool:
    """Same top-k scores, and every hit of one is in the other's top 5k with the same score (tied hits may swap,
    also across the k-th place)."""
    top_a, top_b = top(a, query, mode, k), top(b, query, mode, k)
    if len(top_a) != len(top_b) or any(abs(sa - sb) > tol for (_ka, sa), (_kb, sb) in zip(top_a, top_b)):
        return False
    wide_a, wide_b = dict(top(a, query, mode, 5 * k)), dict(top(b, query, mode, 5 * k))
    return all(key in wide_b and abs(wide_b[key] - s) <= tol for key, s in top_a) and all(
        key in wide_a and abs(wide_a[key] - s) <= tol for key, s in top_b
    )


@pytest.mark.skipif(not SQUAD_DEV.is_file(), reason=f"SQuAD dev set not found at {SQUAD_DEV}")
def test_incremental_index_ranks_exactly_as_a_clean_build(tmp_path, embedder):
    folder = tmp_path / "squad"
    files = squad_files(folder, 120)
    settings = {"chunk_tokens": 32, "overlap_tokens": 0}
    incremental = Engine.open(tmp_path / "incremental")
    incremental.index(folder, **settings)

    # 80 added, 30 changed, 20 deleted, 10 renamed (every text stays unique).
    for rel, _q in files[:20]:
        (folder / rel).unlink()
    for n, (rel, _q) in enumerate(files[20:30]):
        (folder / rel).rename(folder / rel.replace(".txt", f"-moved{n}.txt"))
    extra = squad_files(tmp_path / "extra", 110, start=120)
    for (rel, _q), (extra_rel, _eq) in zip(files[30:60], extra[80:]):
        (folder / rel).write_text((folder / rel).read_text() + (tmp_path / "extra" / extra_rel).read_text())
    for extra_rel, _eq in extra[:80]:
        (folder / "new" / extra_rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(tmp_path / "extra" / extra_rel, folder / "new" / extra_rel)
    report = incremental.index(folder)
    assert (report.added, report.updated, report.removed, report.renamed) == (80, 30, 20, 10)

    clean = Engine.open(tmp_path / "clean")
    clean.index(folder, **settings)
    chunks = "SELECT path, chunk_index, text FROM chunks ORDER BY path, chunk_index"
    assert incremental.snapshot().con.execute(chunks).fetchall() == clean.snapshot().con.execute(chunks).fetchall()

    queries = [q for _rel, q in files[20:120:9]] + [q for _rel, q in extra[:80:8]]
    # Hybrid is RRF over ranks: two chunks with the same BM25 score (equal to the last bit in both builds) may come in
    # either order, which moves a fused score by one rank step, at most 1/61 - 1/62 = 2.6e-4.
    for mode, tol in (("bm25", 1e-5), ("dense", 1e-5), ("hybrid", 3e-4)):
        differ = [q for q in queries if not same_ranking(incremental, clean, q, mode, tol=tol)]
        assert not differ, f"{mode}: {len(differ)} of {len(queries)} top-10 lists differ from a clean build, e.g. {differ[0]!r}"
    incremental.close()
    clean.close()


# ---- 8. a second writer is refused at once ---------------------------------------------------------------
def test_second_writer_is_refused_before_any_slow_work(tmp_path, corpus_copy):
    index = tmp_path / "index"
    with IndexStore(index).writer_lock():
        started = time.monotonic()
        proc = subprocess.run(
            [sys.executable, "-m", "sixfold", "index", str(corpus_copy), "--index", str(index)],
            cwd=REPO,
            env=cli_env(),
            capture_output=True,
            text=True,
            timeout=120,
        )
        elapsed = time.monotonic() - started
    assert_one_error_line(proc.returncode, proc.stderr, "another sixfold process is writing")
    assert elapsed < 10, f"refused only after {elapsed:.1f} s"


def test_writer_lock_is_taken_before_the_model_loads(indexed, monkeypatch):
    """Engine.index must not load the embedder (14 s here, more for large models) while another writer holds the lock."""
    loaded = []
    monkeypatch.setattr(Engine, "embedder", property(lambda self: loaded.append(1) or pytest.fail("model loaded")))
    with IndexStore(indexed.index).writer_lock():
        with pytest.raises(SixfoldError, match="another sixfold process is writing"):
            Engine.open(indexed.index).index(indexed.folder)
    assert not loaded


def test_one_run_holds_the_lock_across_its_commits(indexed, embedder, monkeypatch):
    """index_folder commits every N chunks and begins a new transaction: the run's lock is held throughout."""
    import sixfold.indexer.pipeline as pipeline

    for n in range(40):
        (indexed.folder / "many" / f"f{n:02d}.txt").parent.mkdir(exist_ok=True)
        (indexed.folder / "many" / f"f{n:02d}.txt").write_text(f"File {n} says zorblax {n} times. " * 30)
    monkeypatch.setattr(pipeline, "EMBED_GROUP", 8)
    commits = []
    real_begin = IndexStore.begin

    def begin(store, settings=None):
        with pytest.raises(SixfoldError, match="another sixfold process"):  # a second writer between commits
            real_begin(IndexStore(store.root))
        commits.append(store.holds_lock())
        return real_begin(store, settings)

    monkeypatch.setattr(IndexStore, "begin", begin)
    store = IndexStore(indexed.index)
    with store.writer_lock():
        report = pipeline.index_folder(store, indexed.folder, embedder, commit_every=16)
    assert report.added == 40 and len(commits) > 2 and all(commits)
    assert not store.holds_lock()
    real_begin(IndexStore(indexed.index)).abort()  # released at the end
