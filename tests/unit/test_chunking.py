"""Chunking (indexer/chunking.py) with the embedder's real tokenizer, read by the ``tokenizers`` library (no torch)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
from tokenizers import Tokenizer

from sixfold.core.errors import SixfoldError
from sixfold.core.models import DEFAULT_EMBEDDER, resolve_model
from sixfold.indexer.chunking import Chunker
from sixfold.indexer.loaders import LoadedDocument, Section


@pytest.fixture(scope="module")
def tokenizer() -> SimpleNamespace:
    """What the Chunker reads of a transformers fast tokenizer: its ``backend_tokenizer``."""
    backend = Tokenizer.from_file(str(Path(resolve_model(DEFAULT_EMBEDDER).path) / "tokenizer.json"))
    return SimpleNamespace(backend_tokenizer=backend)


def tokens(tokenizer: SimpleNamespace, text: str) -> int:
    backend = tokenizer.backend_tokenizer
    backend.no_padding()  # the packaged tokenizer.json pads to 128
    return len(backend.encode(text, add_special_tokens=False).ids)


PROSE = " ".join(
    f"Sentence {n} tells how the steam engine, a heat engine, turns the energy of steam into mechanical work." for n in range(40)
)


def check_chunks(document: LoadedDocument, chunks, tokenizer, size: int) -> None:
    text = document.text
    for chunk in chunks:
        assert text[chunk.start_char : chunk.end_char] == chunk.text, "offsets point at the chunk's text"
        assert 0 < tokens(tokenizer, chunk.text) <= size
    starts = [c.start_char for c in chunks]
    assert starts == sorted(starts) and len(set(starts)) == len(starts), "reading order, no duplicates"


def test_chunks_fit_the_token_budget_overlap_and_cover_the_text(tokenizer):
    document = LoadedDocument(None, [Section(PROSE)])
    chunks = Chunker(tokenizer, chunk_tokens=48, overlap_tokens=12).split(document)
    assert len(chunks) > 10
    check_chunks(document, chunks, tokenizer, 48)
    for before, after in zip(chunks, chunks[1:]):
        assert after.start_char < before.end_char, "consecutive chunks overlap"
    covered = set()
    for chunk in chunks:
        covered.update(range(chunk.start_char, chunk.end_char))
    assert all(i in covered for i, ch in enumerate(PROSE) if not ch.isspace())


def test_no_overlap_means_chunks_do_not_share_text(tokenizer):
    document = LoadedDocument(None, [Section(PROSE)])
    chunks = Chunker(tokenizer, chunk_tokens=32, overlap_tokens=0).split(document)
    check_chunks(document, chunks, tokenizer, 32)
    assert all(a.end_char <= b.start_char for a, b in zip(chunks, chunks[1:]))


def test_sections_keep_their_page_and_heading_and_offsets_count_the_separator(tokenizer):
    document = LoadedDocument("Doc", [Section("First page words.", page=1), Section("# Steam\nSecond page words.", 2, "Steam")])
    chunks = Chunker(tokenizer, chunk_tokens=64, overlap_tokens=8).split(document)
    assert [(c.text, c.page, c.heading) for c in chunks] == [
        ("First page words.", 1, None),
        ("# Steam\nSecond page words.", 2, "Steam"),
    ]
    assert chunks[1].start_char == len("First page words.") + 2
    check_chunks(document, chunks, tokenizer, 64)


def test_a_long_run_without_spaces_is_windowed(tokenizer):
    blob = "QmFzZTY0" * 2000  # 16,000 characters of base64, no separator for the splitter to use
    document = LoadedDocument(None, [Section(f"header line\n{blob}\ntrailer line")])
    chunks = Chunker(tokenizer, chunk_tokens=32, overlap_tokens=4).split(document)
    check_chunks(document, chunks, tokenizer, 32)
    assert chunks[0].text == "header line" and chunks[-1].text == "trailer line"
    windows = chunks[1:-1]
    assert windows[0].start_char == len("header line\n") and windows[-1].end_char == len("header line\n") + len(blob)
    assert all(a.start_char < b.start_char < a.end_char for a, b in zip(windows, windows[1:])), "windows overlap"


def test_repetitive_text_gets_the_right_offsets(tokenizer):
    """Identical lines: each piece matches at many places. The offsets used to drift ahead (the piece taken to start
    after the previous one, ignoring their overlap) until the text ran out and the last pieces claimed offset 0."""
    text = "\n".join(["the same line again"] * 60)  # 4 tokens a line: 5 lines a chunk, the last line carried over
    document = LoadedDocument(None, [Section(text)])
    chunks = Chunker(tokenizer, chunk_tokens=20, overlap_tokens=5).split(document)
    check_chunks(document, chunks, tokenizer, 20)
    assert [c.start_char for c in chunks] == [80 * n for n in range(len(chunks))]  # a line is 20 characters
    assert chunks[-1].end_char == len(text)


@pytest.mark.parametrize(("size", "overlap", "message"), [(8, 0, "at least 16"), (32, 32, "overlap"), (32, -1, "overlap")])
def test_bad_sizes_are_refused(tokenizer, size, overlap, message):
    with pytest.raises(SixfoldError, match=message):
        Chunker(tokenizer, chunk_tokens=size, overlap_tokens=overlap)
