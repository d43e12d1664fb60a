"""`sixfold embed` (vectors) and `sixfold status` (what an index holds)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from sixfold import Engine, SixfoldError

from conftest import assert_one_error_line, current_generation


def cosine(a, b) -> float:
    return float(np.dot(a, b))


# ---- embed -------------------------------------------------------------------------------------------
def test_embed_json_shape_and_normalisation(cli, embedder):
    rc, out, err = cli("embed", "A man is playing a guitar.", "The stock market fell sharply.", "--json")
    assert rc == 0, err
    data = json.loads(out)
    assert data["model"] == "all-MiniLM-L6-v2"
    assert data["dimension"] == 384
    assert [d["index"] for d in data["data"]] == [0, 1]
    assert [d["text"] for d in data["data"]] == ["A man is playing a guitar.", "The stock market fell sharply."]
    for item in data["data"]:
        vector = np.asarray(item["embedding"])
        assert vector.shape == (384,)
        assert np.linalg.norm(vector) == pytest.approx(1.0, abs=1e-4)
    first, second = (np.asarray(d["embedding"]) for d in data["data"])
    assert not np.allclose(first, second)


def test_embed_matches_api_and_model(tmp_path, cli, embedder):
    text = "Oxygen is a chemical element with symbol O."
    rc, out, err = cli("embed", text, "--json")
    assert rc == 0, err
    from_cli = np.asarray(json.loads(out)["data"][0]["embedding"])
    from_api = Engine.open(tmp_path / "no-index").embed(text)[0]
    direct = embedder.model.encode([text], normalize_embeddings=True)[0]
    np.testing.assert_allclose(from_cli, from_api, atol=2e-6)
    np.testing.assert_allclose(from_api, direct, atol=1e-5)


def test_similar_texts_are_closer_than_unrelated(tmp_path, embedder):
    engine = Engine.open(tmp_path / "no-index")
    guitar, music, stocks = engine.embed(
        [
            "A man is playing a guitar.",
            "Someone performs a song on a musical instrument.",
            "Quarterly earnings beat analyst estimates.",
        ]
    )
    assert cosine(guitar, music) > cosine(guitar, stocks) + 0.2
    assert cosine(music, stocks) < cosine(guitar, music)
    assert engine.embed("A man is playing a guitar.")[0] == pytest.approx(guitar, abs=1e-5)


def test_embed_from_file(tmp_path, cli, embedder):
    texts = ["first line about cats", "second line about dogs", "third line, ünïcödé text"]
    f = tmp_path / "texts.txt"
    f.write_text(f"{texts[0]}\n\n   \n{texts[1]}\n{texts[2]}\n", encoding="utf-8")
    rc, out, err = cli("embed", "an argument text", "--file", f, "--json")
    assert rc == 0, err
    data = json.loads(out)["data"]
    assert [d["text"] for d in data] == ["an argument text", *texts], "blank lines skipped, arguments first, order kept"
    expected = Engine.open(tmp_path / "no-index").embed(texts)
    for item, want in zip(data[1:], expected, strict=False):
        np.testing.assert_allclose(item["embedding"], want, atol=2e-6)


def test_embed_table_output(cli, embedder):
    rc, out, err = cli("embed", "hello world")
    assert rc == 0, err
    assert "384-d" in out and "hello world" in out


def test_embed_with_index_uses_its_model(shared_index, cli):
    rc, out, err = cli("embed", "hello", "--index", shared_index.path, "--json")
    assert rc == 0, err
    assert json.loads(out)["model"] == shared_index.engine.status().model


def test_embed_errors(tmp_path, cli):
    rc, _out, err = cli("embed")
    assert_one_error_line(rc, err, "no text to embed")
    rc, _out, err = cli("embed", "--file", tmp_path / "missing.txt")
    assert_one_error_line(rc, err, "does not exist")
    (tmp_path / "blank.txt").write_text("\n  \n")
    rc, _out, err = cli("embed", "--file", tmp_path / "blank.txt")
    assert_one_error_line(rc, err, "no text to embed")
    rc, _out, err = cli("embed", "hi", "--index", tmp_path / "not-an-index")
    assert_one_error_line(rc, err, "no index")


def test_embed_api_rejects_empty_texts(tmp_path):
    engine = Engine.open(tmp_path / "no-index")
    for bad in ([], ["ok", "  "], [""]):
        with pytest.raises(SixfoldError):
            engine.embed(bad)


# ---- status ------------------------------------------------------------------------------------------
def test_status_json_fields(shared_index, cli):
    rc, out, err = cli("status", "--index", shared_index.path, "--json")
    assert rc == 0, err
    status = json.loads(out)
    snapshot = shared_index.engine.snapshot()
    assert status["documents"] == 6
    assert status["chunks"] == snapshot.count_chunks() == shared_index.report.chunks_added > 0
    assert status["model"] == "all-MiniLM-L6-v2"
    assert status["dimension"] == 384
    assert status["index_type"] == "auto"
    assert status["vector_index"] == "flat"
    assert status["language"] == "auto"  # each document's detected language (examples/corpus: all English)
    assert status["languages"] == {"en": status["chunks"]}
    assert status["chunk_tokens"] == 200 and status["overlap_tokens"] == 40
    assert status["generation"] == current_generation(shared_index.path).name
    assert status["size_bytes"] > 0
    assert status["size_bytes"] >= (current_generation(shared_index.path) / "vectors.faiss").stat().st_size
    assert status["path"] == str(shared_index.path.resolve())
    assert status["created_at"] and status["updated_at"]


def test_status_table(shared_index, cli):
    rc, out, err = cli("status", "--index", shared_index.path)
    assert rc == 0, err
    for word in ("documents", "chunks", "all-MiniLM-L6-v2", "384", "generation"):
        assert word in out


def test_status_subprocess_json(shared_index):
    from conftest import run_cli

    proc = run_cli("status", "--index", shared_index.path, "--json")
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    assert json.loads(proc.stdout)["documents"] == 6


def test_embed_says_when_a_text_is_longer_than_the_model_reads(cli):
    code, out, err = cli("embed", "short text", "word " * 400, "--json")
    assert code == 0
    data = json.loads(out)["data"]
    assert [d["truncated"] for d in data] == [False, True]
    assert data[1]["tokens"] > 256
    assert "reads the first 256" in err
