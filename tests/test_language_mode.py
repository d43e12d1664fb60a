"""The default search mode follows the languages the embedder reads: hybrid, or bm25 for an index in a language the
embedder does not read (the English-only MiniLM named for a Spanish folder; on XQuAD-R es: bm25 0.820 nDCG@10,
hybrid 0.659). A Spanish folder indexed without --model gets the multilingual USE instead (tests/test_languages.py)."""

from __future__ import annotations

import json

import pytest

from sixfold import Engine
from sixfold.core.models import model_languages
from sixfold.retriever.search import default_mode

# Three short Spanish texts written for this test.
SPANISH = {
    "paquetes.txt": "Para instalar un paquete en Debian se usa la orden apt install seguida del nombre del paquete.",
    "red.txt": "La configuración de la red se guarda en el fichero interfaces dentro del directorio de red.",
    "usuarios.txt": "Para añadir un usuario nuevo al sistema se usa la orden adduser con el nombre del usuario.",
}


def test_rule():
    assert model_languages("all-MiniLM-L6-v2") == ("en",)
    assert model_languages("/some/local/folder") is None
    assert default_mode("en", ("en",)) == "hybrid"
    assert default_mode("es", ("en",)) == "bm25"
    assert default_mode("none", ("en",)) == "hybrid"  # no stemmer named: the language is not known
    assert default_mode("es", None) == "hybrid"  # an embedder of unknown languages (a local folder) is trusted


@pytest.fixture(scope="module")
def spanish_index(tmp_path_factory, embedder):
    base = tmp_path_factory.mktemp("es")
    corpus = base / "docs"
    corpus.mkdir()
    for name, text in SPANISH.items():
        (corpus / name).write_text(text, encoding="utf-8")
    engine = Engine.open(base / "idx", model="all-MiniLM-L6-v2")  # named: a Spanish folder would get USE
    engine.index(corpus, language="es")
    return base / "idx", engine


def test_spanish_index_searches_bm25_by_default(spanish_index):
    _path, engine = spanish_index
    assert engine.default_mode() == "bm25"
    assert engine.status().search_mode == "bm25"
    hits = engine.search("¿cómo instalo un paquete?", k=3)
    assert hits[0].path == "paquetes.txt"
    assert all(set(h.scores) == {"bm25"} for h in hits)
    hybrid = engine.search("¿cómo instalo un paquete?", k=3, mode="hybrid")  # still there when asked for
    assert "dense" in hybrid[0].scores


def test_english_index_stays_hybrid(shared_index):
    assert shared_index.engine.default_mode() == "hybrid"
    hits = shared_index.engine.search("Who were the Normans descended from?", k=3)
    assert {"dense", "bm25"} <= set(hits[0].scores)


def test_cli_reports_the_mode(spanish_index, cli):
    path, _engine = spanish_index
    rc, out, _err = cli("status", "--index", path, "--json")
    assert rc == 0 and json.loads(out)["search_mode"] == "bm25"
    rc, out, _err = cli("search", "usuario nuevo", "--index", path, "--json")
    assert rc == 0
    result = json.loads(out)
    assert result["mode"] == "bm25" and result["hits"][0]["path"] == "usuarios.txt"
