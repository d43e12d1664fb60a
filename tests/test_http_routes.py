"""The HTTP package calls the Engine: inline documents (``/v1/search``, ``/v1/answers``) and ``ask --docs`` are ranked
by one Engine method, ``Engine.rank_texts``; the answer mode is the Engine's; the routers stay short.

Real everything: the packaged embedder and language model, uvicorn on a free loopback port, httpx.
"""

from __future__ import annotations

import ast
from pathlib import Path

import httpx
import numpy as np
import pytest

from sixfold.core.errors import SixfoldError
from sixfold.engine import Engine

from live_server import LiveServer

HTTP = Path(__file__).resolve().parents[1] / "sixfold" / "http"
PLANTS = "Which gas do plants give off in the light?"
DOCS = [
    "The Eiffel Tower stands in Paris.",
    "Photosynthesis: plants use light to split water and give off oxygen.",
    "Paris is the capital of France.",
    "The Eiffel Tower stands in Paris.",
]


@pytest.fixture(scope="module")
def live(shared_index):
    from sixfold.http import create_app

    with LiveServer(create_app(shared_index.path, warm=False, embedders=1)) as server:
        yield server


def test_rank_texts_ranks_given_texts_by_cosine_and_names_them(shared_index, embedder):
    engine = shared_index.engine
    ranked = engine.rank_texts(PLANTS, DOCS, k=3)
    assert len(ranked) == 3 and ranked[0].id == 1 and ranked[0].text == DOCS[1]
    vectors = embedder.encode([PLANTS, *DOCS])
    cosine = vectors[1:] @ vectors[0]
    np.testing.assert_allclose([p.score for p in ranked], cosine[[p.id for p in ranked]], atol=1e-5)
    assert [p.score for p in ranked] == sorted((p.score for p in ranked), reverse=True)
    assert ranked[0].path == "texts[1]" and ranked[0].dense == ranked[0].score
    everything = engine.rank_texts("Where is the Eiffel Tower?", DOCS, k=10)
    assert len(everything) == 4 and {p.id for p in everything[:2]} == {0, 3}
    named = engine.rank_texts(PLANTS, DOCS[:2], 1, sources=[("a.md", ""), ("b.md", "chars 0-70")])
    assert (named[0].path, named[0].location) == ("b.md", "chars 0-70")


def test_rank_texts_refuses_an_empty_query_or_no_texts(shared_index):
    with pytest.raises(SixfoldError, match="empty query"):
        shared_index.engine.rank_texts("  ", DOCS, 2)
    with pytest.raises(SixfoldError, match="no texts to rank"):
        shared_index.engine.rank_texts(PLANTS, [], 2)


def test_ask_docs_passages_are_ranked_by_rank_texts(shared_index, tmp_path, monkeypatch):
    doc = tmp_path / "plants.txt"
    doc.write_text(DOCS[1] + "\n\n" + DOCS[2] + "\n")
    calls, real = [], Engine.rank_texts

    def spy(self, query, texts, k=5, **kwargs):
        calls.append((query, list(texts), k))
        return real(self, query, texts, k, **kwargs)

    monkeypatch.setattr(Engine, "rank_texts", spy)
    passages = shared_index.engine.passages(PLANTS, 2, docs=[doc])
    assert calls and calls[0][0] == PLANTS and calls[0][2] == 2
    assert passages[0].path == str(doc) and passages[0].location.startswith("chars ")
    assert "oxygen" in passages[0].text


def test_inline_documents_are_ranked_by_the_engine_for_search_and_answers(live, shared_index, monkeypatch):
    monkeypatch.delenv("SIXFOLD_READER", raising=False)
    expected = shared_index.engine.rank_texts(PLANTS, DOCS, k=3)
    found = httpx.post(live.url + "/v1/search", json={"query": PLANTS, "documents": DOCS, "max_rerank": 3}, timeout=60)
    assert found.status_code == 200, found.text
    data = found.json()["data"]
    assert [d["document"] for d in data] == [p.id for p in expected]
    np.testing.assert_allclose([d["score"] for d in data], [p.score for p in expected], atol=1e-5)

    body = {"question": PLANTS, "documents": DOCS, "k": 2}
    answered = httpx.post(live.url + "/v1/answers", json=body, timeout=240)
    assert answered.status_code == 200, answered.text
    answer = answered.json()
    assert [d["document"] for d in answer["selected_documents"]] == [p.id for p in expected[:2]]
    assert answer["sources"][0] == {"document": 1, "path": "documents[1]", "location": ""}
    assert answer["mode"] == "generative"  # the Engine's answer_mode: no reader model, so auto is generative

    refused = httpx.post(live.url + "/v1/answers", json={**body, "mode": "extractive"}, timeout=60)
    assert refused.status_code == 400 and refused.json()["error"]["param"] == "mode"
    assert "tuned reader" in refused.json()["error"]["message"]


def test_the_http_package_ranks_nothing_itself_and_its_functions_are_short():
    for module in sorted(HTTP.glob("*.py")):
        source = module.read_text()
        assert "argsort" not in source and "@ vectors" not in source, f"{module.name} ranks texts itself"
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = node.end_lineno - node.lineno + 1
                assert lines <= 60, f"{module.name}:{node.lineno} {node.name} has {lines} lines"
