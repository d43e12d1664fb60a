"""Bad input: every user-fixable failure is one 'error:' line on stderr and a non-zero exit, never a traceback.

Failures that happen before a model is loaded run as real ``python -m sixfold`` subprocesses (cheap); the ones
that need the model run the same CLI ``main`` in-process, sharing the session's loaded model.
"""

from __future__ import annotations

import gzip
import json
import os
import shutil
from pathlib import Path

import pytest

from sixfold import Engine
from sixfold.core.models import resolve_model

from conftest import assert_one_error_line, copy_index, current_generation, run_cli


def cli_error(proc, *fragments):
    return assert_one_error_line(proc.returncode, proc.stderr, *fragments)


@pytest.fixture
def index_copy(shared_index, tmp_path) -> Path:
    return copy_index(shared_index.path, tmp_path / "index")


# ---- index: bad folders ----------------------------------------------------------------------------
def test_index_missing_folder(tmp_path):
    cli_error(run_cli("index", tmp_path / "nope", "--index", tmp_path / "idx"), "does not exist")
    assert not (tmp_path / "idx" / "sixfold-index.json").exists()


def test_index_file_instead_of_folder(tmp_path):
    f = tmp_path / "a.txt"
    f.write_text("hello")
    cli_error(run_cli("index", f, "--index", tmp_path / "idx"), "not a folder")


def test_index_empty_folder(tmp_path, cli, embedder):
    (tmp_path / "empty").mkdir()
    rc, _out, err = cli("index", tmp_path / "empty", "--index", tmp_path / "idx")
    assert_one_error_line(rc, err, "no files to index")
    assert not (tmp_path / "idx" / "sixfold-index.json").exists()
    assert not list((tmp_path / "idx").glob("gen-*")), "a failed first run left a generation behind"


def test_index_folder_with_only_unsupported_files(tmp_path, cli, embedder):
    folder = tmp_path / "pics"
    folder.mkdir()
    (folder / "a.png").write_bytes(b"\x89PNG\r\n\x1a\n" + os.urandom(64))
    rc, _out, err = cli("index", folder, "--index", tmp_path / "idx")
    assert_one_error_line(rc, err, "no files to index")


def test_index_into_non_sixfold_folder_is_refused(shared_index, tmp_path):
    other = tmp_path / "mystuff"
    other.mkdir()
    (other / "thesis.txt").write_text("precious")
    cli_error(run_cli("index", shared_index.corpus, "--index", other), "not a sixfold index")
    assert sorted(p.name for p in other.iterdir()) == ["thesis.txt"], "the user's folder was written to"


def test_index_path_that_is_a_file(shared_index, tmp_path):
    f = tmp_path / "idx"
    f.write_text("x")
    cli_error(run_cli("index", shared_index.corpus, "--index", f), "is a file")


def test_index_inside_the_indexed_folder_is_refused(corpus_copy, cli, embedder):
    rc, _out, err = cli("index", corpus_copy, "--index", corpus_copy / "idx")
    assert_one_error_line(rc, err, "cannot be inside")


def test_index_error_output_has_no_blank_line(tmp_path):
    """stderr of a failing `index` is exactly the one error line (no progress-bar residue before it)."""
    proc = run_cli("index", tmp_path / "nope", "--index", tmp_path / "idx")
    assert proc.returncode == 1
    assert proc.stderr.startswith("error:"), repr(proc.stderr)
    assert proc.stderr.count("\n") == 1, repr(proc.stderr)


# ---- search / status: not an index, corrupt index ----------------------------------------------------
def test_search_on_folder_that_is_not_an_index(tmp_path):
    (tmp_path / "plain").mkdir()
    (tmp_path / "plain" / "x.txt").write_text("x")
    cli_error(run_cli("search", "hello", "--index", tmp_path / "plain"), "not a sixfold index")


def test_search_on_missing_index(tmp_path):
    cli_error(run_cli("search", "hello", "--index", tmp_path / "nothing"), "no index")
    cli_error(run_cli("status", "--index", tmp_path / "nothing"), "no index")


def test_corrupt_pointer(index_copy):
    """With a readable generation on disk a garbled pointer falls back to it (tests/test_damaged_index.py); with none,
    one clear error."""
    (current_generation(index_copy) / "chunks.duckdb").write_bytes(os.urandom(4096))
    (index_copy / "sixfold-index.json").write_text("{not json at all")
    cli_error(run_cli("search", "hello", "--index", index_copy), "corrupt")
    cli_error(run_cli("status", "--index", index_copy), "corrupt")


def test_pointer_to_missing_generation(index_copy):
    shutil.rmtree(current_generation(index_copy))
    cli_error(run_cli("status", "--index", index_copy), "missing")


def test_garbage_duckdb(index_copy):
    (current_generation(index_copy) / "chunks.duckdb").write_bytes(os.urandom(4096))
    cli_error(run_cli("search", "hello", "--index", index_copy), "corrupt", "chunks.duckdb")
    cli_error(run_cli("status", "--index", index_copy), "corrupt", "chunks.duckdb")


@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_corrupt_vectors_fail_search(index_copy, cli, embedder, damage):
    faiss_file = current_generation(index_copy) / "vectors.faiss"
    if damage == "garbage":
        faiss_file.write_bytes(b"garbage!" * 64)
    else:
        faiss_file.write_bytes(faiss_file.read_bytes()[: faiss_file.stat().st_size // 2])
    for mode in ("hybrid", "dense"):
        rc, _out, err = cli("search", "Who were the Normans descended from?", "--index", index_copy, "--mode", mode)
        assert_one_error_line(rc, err, "corrupt", "vectors.faiss")


def test_reindex_repairs_corrupt_vectors_when_nothing_changed(shared_index, index_copy, cli, embedder):
    """The vectors are also in DuckDB: `sixfold index` after 'corrupt vectors.faiss' must leave a searchable index."""
    (current_generation(index_copy) / "vectors.faiss").write_bytes(b"garbage!" * 64)
    rc, _out, err = cli("index", shared_index.corpus, "--index", index_copy)
    assert rc == 0, err
    rc, out, err = cli("search", "Who were the Normans descended from?", "--index", index_copy, "--json")
    assert rc == 0, f"index reported success but search still fails: {err}"
    assert '"history/normans.md"' in out


def test_reindex_with_changes_repairs_corrupt_vectors(shared_index, index_copy, tmp_path, embedder):
    (current_generation(index_copy) / "vectors.faiss").write_bytes(b"garbage!" * 64)
    engine = Engine.open(index_copy)
    other = tmp_path / "more"
    other.mkdir()
    (other / "z.txt").write_text("The zorblax reactor converts marmalade into flapdoodle.\n")
    report = engine.index(other)  # any change commits a new generation, with vectors rebuilt from DuckDB
    assert report.added == 1
    snapshot = engine.snapshot()
    assert snapshot.vectors.ntotal == snapshot.count_chunks()
    assert engine.search("Who were the Normans descended from?", k=1, mode="dense")[0].path == "history/normans.md"
    engine.close()


def test_corrupt_lexical_index(index_copy, cli, embedder):
    """DuckDB holds the chunk text: search rebuilds the BM25 index in memory (and status says what to repair)."""
    lexical = current_generation(index_copy) / "lexical"
    for p in lexical.iterdir():
        if p.is_file():
            p.write_bytes(b"junk")
    rc, out, err = cli("search", "Who were the Normans descended from?", "--index", index_copy, "--mode", "bm25")
    assert rc == 0 and "Traceback" not in err, err
    assert "normans.md" in out


# ---- bad queries -------------------------------------------------------------------------------------
@pytest.mark.parametrize("query", ["", "   ", "\t\n"], ids=["empty", "spaces", "whitespace"])
def test_empty_query(shared_index, query):
    cli_error(run_cli("search", query, "--index", shared_index.path), "empty query")


@pytest.mark.parametrize("k", ["0", "-1"])
def test_non_positive_k(shared_index, k):
    cli_error(run_cli("search", "hello", "--index", shared_index.path, "-k", k), "argument -k: ")


def test_non_numeric_k(shared_index):
    proc = run_cli("search", "hello", "--index", shared_index.path, "-k", "ten")
    assert proc.returncode == 2
    cli_error(proc, "-k")


def test_api_rejects_bad_queries(shared_index):
    from sixfold import SixfoldError

    for query, k in (("", 5), ("  ", 5), ("ok", 0), ("ok", -3)):
        with pytest.raises(SixfoldError):
            shared_index.engine.search(query, k=k)
    with pytest.raises(SixfoldError, match="mode"):
        shared_index.engine.search("ok", mode="fuzzy")


@pytest.mark.parametrize(
    ("where", "fragment"),
    [("no_such_column = 1", "bad --where"), ("ext = ", "bad --where"), ("ext = 'pdf'; DROP TABLE chunks", "without ';'")],
)
def test_bad_where(shared_index, cli, embedder, where, fragment):
    rc, _out, err = cli("search", "hello", "--index", shared_index.path, "--where", where)
    assert_one_error_line(rc, err, fragment)
    assert shared_index.engine.snapshot().count_chunks() > 0


def test_unknown_subcommand_and_missing_argument():
    cli_error(run_cli("frobnicate"))
    cli_error(run_cli("search"))


# ---- models ------------------------------------------------------------------------------------------
def test_search_with_nonexistent_model(shared_index):
    cli_error(run_cli("search", "hello", "--index", shared_index.path, "--model", "no-such-model-xyz"), "not found")


def test_index_with_nonexistent_model(shared_index, tmp_path):
    cli_error(run_cli("index", shared_index.corpus, "--index", tmp_path / "idx", "--model", "no-such-model-xyz"), "not found")
    assert not (tmp_path / "idx" / "sixfold-index.json").exists()


def test_embed_with_nonexistent_model():
    cli_error(run_cli("embed", "hello", "--model", "./no/such/model/folder"), "not found")


def test_search_with_a_different_model_is_refused(shared_index, tmp_path):
    model_copy = tmp_path / "my-minilm"
    shutil.copytree(resolve_model("all-MiniLM-L6-v2").path, model_copy)
    cli_error(run_cli("search", "hello", "--index", shared_index.path, "--model", model_copy), "built with the model")


def test_search_with_the_index_model_alias_is_accepted(shared_index, cli):
    rc, out, err = cli(
        "search",
        "Normans",
        "--index",
        shared_index.path,
        "--model",
        "sentence-transformers/all-MiniLM-L6-v2",
        "-k",
        "1",
        "--json",
    )
    assert rc == 0, err
    assert "normans.md" in out


def test_index_with_a_different_model_into_existing_index_is_refused(shared_index, index_copy, tmp_path):
    model_copy = tmp_path / "my-minilm"
    shutil.copytree(resolve_model("all-MiniLM-L6-v2").path, model_copy)
    cli_error(run_cli("index", shared_index.corpus, "--index", index_copy, "--model", model_copy), "model")


def test_empty_model_folder(shared_index, tmp_path):
    (tmp_path / "m").mkdir()
    cli_error(run_cli("embed", "hello", "--model", tmp_path / "m"), "empty")


# ---- bad files inside a folder being indexed ---------------------------------------------------------
def make_bad_files(folder: Path) -> dict[str, str]:
    """Bad files (name -> kind) beside the good corpus."""
    bad = folder / "bad"
    bad.mkdir()
    (bad / "empty.txt").write_bytes(b"")
    (bad / "garbage.pdf").write_bytes(b"\x00\xffnot a pdf" + bytes(range(256)) * 8)
    (bad / "nul.txt").write_bytes(b"hello\x00world\x00" * 50)
    (bad / "corrupt.docx").write_bytes(b"PK\x03\x04 this is not really a zip" + os.urandom(200))
    (bad / "blank.md").write_text("   \n\n\t\n")
    (bad / "truncated.pdf").write_bytes(b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog")
    (bad / "picture.png").write_bytes(b"\x89PNG\r\n\x1a\n" + os.urandom(100))
    return {
        "bad/empty.txt": "empty",
        "bad/garbage.pdf": "pdf",
        "bad/nul.txt": "binary",
        "bad/corrupt.docx": "docx",
        "bad/blank.md": "empty",
        "bad/truncated.pdf": "pdf",
    }


def test_bad_files_are_skipped_with_one_warning_each(corpus_copy, tmp_path, cli):
    bad = make_bad_files(corpus_copy)
    # good files in less common encodings/containers, beside the bad ones
    (corpus_copy / "latin1.txt").write_bytes("Le café crème et la brûlée zorblaxée sont délicieux à Noël.".encode("latin-1"))
    (corpus_copy / "notes.txt.gz").write_bytes(gzip.compress(b"Compressed notes about the quux flapdoodle protocol.\n"))
    index = tmp_path / "idx"
    proc = run_cli("index", corpus_copy, "--index", index)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    warnings = [line for line in proc.stderr.splitlines() if line.startswith("warning:")]
    for name in bad:
        mine = [w for w in warnings if name in w]
        assert len(mine) == 1, f"{name}: expected one warning line, got {mine} in {proc.stderr!r}"
        assert "skipped" in mine[0]
    assert len(warnings) == len(bad)
    assert f"{len(bad)} files skipped" in proc.stdout
    assert "8 added" in proc.stdout
    assert "unsupported" in proc.stdout and ".png" in proc.stdout

    engine = Engine.open(index)
    status = engine.status()
    assert status.documents == 8
    indexed = {r["path"] for r in engine.snapshot().files()}
    assert not indexed & set(bad)
    assert engine.search("Who were the Normans descended from?", k=1)[0].path == "history/normans.md"
    assert engine.search("café crème brûlée", k=1, mode="bm25")[0].path == "latin1.txt"
    assert engine.search("quux flapdoodle protocol", k=1, mode="bm25")[0].path == "notes.txt.gz"
    engine.close()

    # bad files are retried (and reported again) on the next run, the rest is untouched
    rc, out, err = cli("index", corpus_copy, "--index", index, "--json")
    assert rc == 0, err
    report = json.loads(out)
    assert report["added"] == 0 and report["unchanged"] == 8
    assert sorted(path for path, _reason in report["skipped"]) == sorted(bad)
    assert len([line for line in err.splitlines() if line.startswith("warning:")]) == len(bad)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files regardless of their mode")
def test_unreadable_file_is_skipped(corpus_copy, tmp_path, cli, embedder):
    locked = corpus_copy / "locked.txt"
    locked.write_text("secret")
    locked.chmod(0)
    try:
        rc, out, err = cli("index", corpus_copy, "--index", tmp_path / "idx")
        assert rc == 0, err
        assert any("locked.txt" in line and line.startswith("warning:") for line in err.splitlines())
        assert "1 files skipped" in out
    finally:
        locked.chmod(0o644)


def test_api_index_missing_folder_raises_sixfold_error(tmp_path):
    from sixfold import SixfoldError

    with pytest.raises(SixfoldError, match="does not exist"):
        Engine.open(tmp_path / "idx").index(tmp_path / "nope")
