"""Retrieval quality and hit contents on the bundled corpus (shared read-only index)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sixfold.indexer.loaders import load_document

from conftest import KNOWN_ANSWERS, MODES


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(("query", "expected"), KNOWN_ANSWERS, ids=[p for _, p in KNOWN_ANSWERS])
def test_known_answer_file_ranks_first(shared_index, query, expected, mode):
    hits = shared_index.engine.search(query, k=5, mode=mode)
    assert hits, f"no hits for {query!r} in {mode} mode"
    assert hits[0].path == expected, [(h.path, h.score) for h in hits]
    assert [h.rank for h in hits] == list(range(1, len(hits) + 1))
    scores = [h.score for h in hits]
    assert scores == sorted(scores, reverse=True)
    for hit in hits:
        assert hit.root == str(shared_index.corpus.resolve())
        assert (Path(hit.root) / hit.path).is_file()
        assert hit.text.strip()
        assert hit.start_char is not None and hit.end_char is not None
    final_stage = {"hybrid": "fused", "dense": "dense", "bm25": "bm25"}[mode]
    assert hits[0].scores[final_stage] == pytest.approx(hits[0].score)


def test_pdf_hit_has_page_number_of_its_text(shared_index):
    hits = shared_index.engine.search("How many people died in the Black Death plague pandemic in Europe?", k=3, mode="dense")
    top = hits[0]
    assert top.path == "history/black_death.pdf"
    document = load_document(Path(top.root) / top.path)
    pages = {s.page: s.text for s in document.sections}
    assert len(pages) >= 2, "the PDF has several pages; each must be its own section"
    assert top.page in pages, f"page {top.page} not among {sorted(pages)}"
    assert top.text in pages[top.page], "the hit's text is not on the page it claims"
    assert f"p.{top.page}" in top.location


def test_non_pdf_hits_have_no_page(shared_index):
    hit = shared_index.engine.search("Who were the Normans descended from?", k=1)[0]
    assert hit.path.endswith(".md")
    assert hit.page is None
    assert hit.heading == "Normans"  # markdown heading of the section the chunk is in


def test_html_boilerplate_is_not_indexed(shared_index):
    snapshot = shared_index.engine.snapshot()
    rows = snapshot.con.execute("SELECT text FROM chunks WHERE path = 'science/oxygen.html'").fetchall()
    assert rows, "oxygen.html produced no chunks"
    text = "\n".join(r[0] for r in rows)
    assert "chalcogen" in text  # the article body is there
    for boilerplate in ("var x", "Home", "About", "Wikipedia", "CC BY-SA", "margin"):
        assert boilerplate not in text, f"nav/footer/script/style text {boilerplate!r} leaked into the chunks"


def test_docx_heading_and_title(shared_index):
    snapshot = shared_index.engine.snapshot()
    title, heading = snapshot.con.execute(
        "SELECT title, heading FROM chunks WHERE path = 'geography/amazon_rainforest.docx' ORDER BY chunk_index LIMIT 1"
    ).fetchone()
    assert title == "Amazon rainforest"
    assert heading == "Amazon rainforest"


def test_chunk_offsets_slice_document_text(shared_index):
    """start_char/end_char of every chunk (so of every hit) must point at the chunk in the loaded document."""
    snapshot = shared_index.engine.snapshot()
    rows = snapshot.con.execute(
        "SELECT root, path, chunk_index, start_char, end_char, text FROM chunks ORDER BY path, chunk_index"
    ).fetchall()
    documents: dict[str, str] = {}
    wrong = []
    for root, path, index, start, end, text in rows:
        if path not in documents:
            documents[path] = load_document(Path(root) / path).text
        if documents[path][start:end] != text:
            wrong.append(f"{path}#{index} [{start}:{end}]")
    assert not wrong, f"{len(wrong)} of {len(rows)} chunks have offsets that do not slice their text: {wrong}"


def test_hits_from_search_point_into_document(shared_index):
    for query, _expected in KNOWN_ANSWERS:
        for hit in shared_index.engine.search(query, k=3, mode="hybrid"):
            text = load_document(Path(hit.root) / hit.path).text
            assert 0 <= hit.start_char < hit.end_char <= len(text), (hit.path, hit.start_char, hit.end_char)
            assert text[hit.start_char : hit.end_char] == hit.text, (hit.path, hit.location)


def test_results_are_deterministic(shared_index):
    query = "What is packet switching and how does it group data into packets?"
    first = [(h.chunk_id, round(h.score, 5)) for h in shared_index.engine.search(query, k=8)]
    second = [(h.chunk_id, round(h.score, 5)) for h in shared_index.engine.search(query, k=8)]
    assert first == second


def test_k_limits_results_and_large_k_is_capped_by_corpus(shared_index):
    snapshot = shared_index.engine.snapshot()
    total = snapshot.count_chunks()
    assert len(shared_index.engine.search("steam", k=1)) == 1
    dense = shared_index.engine.search("steam", k=total + 50, mode="dense")
    assert len(dense) == total
    assert len({h.chunk_id for h in dense}) == total


def test_cli_search_json(shared_index, cli):
    rc, out, err = cli("search", "Who were the Normans descended from?", "--index", shared_index.path, "-k", "3", "--json")
    assert rc == 0, err
    data = json.loads(out)
    assert data["query"] == "Who were the Normans descended from?"
    assert data["mode"] == "hybrid"
    assert data["reranked"] is False
    assert len(data["hits"]) == 3
    top = data["hits"][0]
    assert top["path"] == "history/normans.md"
    assert top["rank"] == 1
    for key in ("score", "chunk_id", "root", "text", "title", "heading", "page", "start_char", "end_char", "scores", "location"):
        assert key in top, key
    assert "chars" in top["location"]


def test_cli_search_table(shared_index, cli):
    rc, out, err = cli(
        "search", "how does a steam engine turn heat into work", "--index", shared_index.path, "-k", "2", "--mode", "bm25"
    )
    assert rc == 0, err
    assert "steam_engine.txt" in out
    assert "bm25 search" in out


def test_query_with_search_syntax_characters(shared_index):
    """Users type plain text; quotes, colons and operators must not break the BM25 query parser."""
    hits = shared_index.engine.search('Normans: "descended" (from) -Norse AND OR? *', k=3, mode="bm25")
    assert hits and hits[0].path == "history/normans.md"


# ---- metadata filters ------------------------------------------------------------------------------
@pytest.mark.parametrize("mode", MODES)
def test_where_ext_pdf_only_returns_pdf(shared_index, mode):
    hits = shared_index.engine.search(
        "Who were the Normans descended from and where did plague spread?", k=20, mode=mode, where="ext = 'pdf'"
    )
    assert hits, "the PDF has matching passages"
    assert {h.path for h in hits} == {"history/black_death.pdf"}


@pytest.mark.parametrize("mode", MODES)
def test_where_path_like_history(shared_index, mode):
    hits = shared_index.engine.search(
        "What is the atomic number of oxygen? people", k=50, mode=mode, where="path LIKE 'history/%'"
    )
    assert hits
    assert all(h.path.startswith("history/") for h in hits), {h.path for h in hits}
    if mode != "bm25":  # dense ranks every allowed chunk: it must see both history files
        assert {h.path for h in hits} == {"history/normans.md", "history/black_death.pdf"}


def test_where_matching_nothing_gives_no_hits(shared_index, cli):
    assert shared_index.engine.search("oxygen", k=5, where="ext = 'xyz'") == []
    rc, out, err = cli("search", "oxygen", "--index", shared_index.path, "--where", "ext = 'xyz'")
    assert rc == 0, err
    assert "no results" in out


def test_cli_where_filter(shared_index, cli):
    rc, out, err = cli(
        "search",
        "Who were the Normans descended from?",
        "--index",
        shared_index.path,
        "--where",
        "ext = 'pdf'",
        "-k",
        "5",
        "--json",
    )
    assert rc == 0, err
    hits = json.loads(out)["hits"]
    assert hits and all(h["path"].endswith(".pdf") for h in hits)
    assert all(h["page"] is not None for h in hits)
