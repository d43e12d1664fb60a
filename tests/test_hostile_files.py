"""Indexing a folder nobody vetted: broken installs, bombs, huge one-liners, links out, FIFOs, odd encodings and names.

Every test runs the real loaders, chunker, model and index; the CLI is run in-process (``cli``) so the model loads
once. The hostile corpus comes from ``bench/fuzz_corpus.py`` (the benchmark runs the full-size one under a memory cap).
"""

from __future__ import annotations

import codecs
import gzip
import importlib.util
import io
import json
import os
import sys
import time
import tracemalloc
from pathlib import Path

import pytest

from sixfold.indexer import loaders
from sixfold.indexer.chunking import BLOCK_CHARS, Chunker
from sixfold.indexer.loaders import LoadedDocument, LoadError, LoaderUnavailable, LoadLimits, Section, load_document

from conftest import CORPUS, REPO, assert_one_error_line


def _fuzz_module():
    spec = importlib.util.spec_from_file_location("fuzz_corpus", REPO / "bench" / "fuzz_corpus.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["fuzz_corpus"] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def restore_modules():
    """Undo every import a test makes or breaks (a failed import leaves half-imported submodules behind)."""
    saved = dict(sys.modules)
    yield
    sys.modules.clear()
    sys.modules.update(saved)


def _folder(tmp_path: Path, files: dict[str, str | bytes]) -> Path:
    folder = tmp_path / "docs"
    for rel, data in files.items():
        path = folder / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data.encode() if isinstance(data, str) else data)
    return folder


PROSE = "The heron walked along the river bank and counted the boats that passed by the old mill. " * 8


# ---- 1. a loader library that does not import is an installation fault, not a bad file ---------------------------
def test_a_broken_html_library_stops_the_run_with_the_pip_fix(tmp_path, cli, embedder, monkeypatch, restore_modules):
    """lxml 6 without lxml_html_clean: trafilatura fails to import. Before, every HTML file was skipped and the run
    exited 0; now it is one error line naming the missing package, and the index keeps what it had."""
    folder = _folder(tmp_path, {"notes.txt": PROSE})
    index = tmp_path / "index"
    assert cli("index", folder, "--index", index)[0] == 0
    pointer = (index / "sixfold-index.json").read_text()
    (folder / "page.html").write_text(f"<html><body><h1>Page</h1><p>{PROSE}</p></body></html>")

    # Forget every module of the chain trafilatura -> justext -> lxml.html.clean -> lxml_html_clean: an earlier test
    # may have imported them, and a cached one satisfies the import without running the failing line again.
    chain = ("trafilatura", "justext", "lxml.html.clean", "lxml_html_clean")
    for name in [m for m in sys.modules if m in chain or m.startswith(tuple(f"{c}." for c in chain))]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "lxml_html_clean", None)  # what an install without it looks like to `import`
    rc, out, err = cli("index", folder, "--index", index)
    fix = "pip install lxml_html_clean"
    line = assert_one_error_line(rc, err, "cannot read .html files", "trafilatura failed to import", fix)
    assert "[html-clean]" in line  # lxml's own words, printed as they are
    assert (index / "sixfold-index.json").read_text() == pointer  # nothing committed, nothing lost


def test_a_library_missing_outright_names_itself(tmp_path, cli, embedder, monkeypatch, restore_modules):
    folder = _folder(tmp_path, {"a.md": "# A\n\n" + PROSE, "b.pdf": (CORPUS / "history" / "black_death.pdf").read_bytes()})
    monkeypatch.setitem(sys.modules, "pypdf", None)
    rc, out, err = cli("index", folder, "--index", tmp_path / "index")
    assert_one_error_line(rc, err, "cannot read .pdf files", "pypdf failed to import", "pip install pypdf")
    with pytest.raises(LoaderUnavailable):
        load_document(folder / "b.pdf")
    assert not issubclass(LoaderUnavailable, LoadError)


# ---- 2. a gzip bomb is read in a stream up to the cap -------------------------------------------------------------
def test_a_gzip_bomb_is_refused_without_inflating_it(tmp_path):
    bomb = tmp_path / "bomb.txt.gz"
    with gzip.open(bomb, "wb", compresslevel=9) as out:
        for _ in range(256):
            out.write(b"\0" * (1 << 20))  # 256 MB of zeros in ~250 kB
    assert bomb.stat().st_size < 1 << 20
    tracemalloc.start()
    try:
        with pytest.raises(LoadError, match="decompresses to over the 20 MB limit"):
            load_document(bomb)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 64 << 20, f"loading the bomb allocated {peak >> 20} MB"


# ---- 3. per-file size limit, and chunking that stays linear -------------------------------------------------------
def test_a_file_over_the_limit_is_skipped_with_a_warning_and_the_flag_raises_it(tmp_path, cli, embedder):
    folder = _folder(tmp_path, {"small.txt": PROSE, "big.log": PROSE * 30})  # ~22 kB
    index = tmp_path / "index"
    rc, out, err = cli("index", folder, "--index", index, "--max-file-mb", "0.01", "--json")
    assert rc == 0, err
    report = json.loads(out)
    assert report["added"] == 1
    assert report["skipped"] == [["big.log", "file is over the 0.01 MB limit per file (raise it with --max-file-mb)"]]
    assert "warning: skipped big.log: file is over the 0.01 MB limit" in err
    rc, out, err = cli("index", folder, "--index", index, "--max-file-mb", "0.1", "--json")
    assert rc == 0 and json.loads(out)["added"] == 1 and not json.loads(out)["skipped"], err
    for bad in ("0", "-1", "nan", "inf"):
        rc, out, err = cli("index", folder, "--index", index, "--max-file-mb", bad)
        assert_one_error_line(rc, err, "per-file limit")


def test_extracted_text_of_pdf_and_docx_is_held_to_the_limit(monkeypatch):
    monkeypatch.setattr(loaders, "CONTAINER_FACTOR", 1000)  # the files fit; their 4-5 kB of text do not
    limits = LoadLimits(0.001)
    with pytest.raises(LoadError, match="extracted text is over"):
        load_document(CORPUS / "history" / "black_death.pdf", limits)
    with pytest.raises(LoadError, match="extracted text is over"):
        load_document(CORPUS / "geography" / "amazon_rainforest.docx", limits)


def test_a_huge_heading_is_not_copied_into_every_chunk(tmp_path):
    """A 1 MB markdown heading line was the heading (and title) of each of its ~6,000 chunks: 6 GB in Arrow."""
    path = tmp_path / "long.md"
    path.write_text("# " + "h" * 100_000 + "\n\nbody text\n")
    document = load_document(path)
    assert len(document.sections[0].heading) <= 300 and len(document.title) <= 300
    assert document.sections[0].text == "# " + "h" * 100_000 + "\n\nbody text"


def _check_chunks(text: str, chunks, chunker: Chunker) -> None:
    for chunk in chunks:
        assert text[chunk.start_char : chunk.end_char] == chunk.text
        assert chunker._length(chunk.text) <= chunker.chunk_tokens
    covered = bytearray(len(text))
    for chunk in chunks:
        covered[chunk.start_char : chunk.end_char] = b"\1" * (chunk.end_char - chunk.start_char)
    assert all(covered[i] or text[i].isspace() for i in range(len(text))), "text left out of every chunk"


def test_separator_free_text_chunks_in_linear_time_with_exact_offsets(embedder):
    """1 MB without a space or newline: langchain's splitter falls back to single characters and ~3 tokenizer calls
    per character (~15-45 s here, and a list entry per character); the windows take about a second."""
    chunker = Chunker(embedder.tokenizer, 200, 40)
    letters = "x" * 1_000_000
    started = time.perf_counter()
    chunks = chunker.split(LoadedDocument(None, [Section(letters)]))
    seconds = time.perf_counter() - started
    assert seconds < 8, f"{seconds:.1f} s to chunk 1 MB of separator-free text"
    assert len(chunks) == -(-(len(letters) - 40) // 160)  # 200-character windows, 40 of overlap: what langchain made
    _check_chunks(letters, chunks, chunker)

    cjk = "".join(chr(0x4E00 + (i * 7919) % 20000) for i in range(40_000))  # CJK: one token per character, no spaces
    mixed = [Section(PROSE), Section(PROSE[:300] + " " + cjk + " tail words here", page=2), Section("base64:" + "Ab+/" * 5000)]
    document = LoadedDocument(None, mixed)
    chunks = chunker.split(document)
    _check_chunks(document.text, chunks, chunker)
    assert {c.page for c in chunks} == {None, 2}
    assert chunks[-1].text.endswith("Ab+/")


def test_ordinary_text_chunks_as_the_splitter_alone_would(embedder):
    """Below the run and block sizes nothing changes: the same pieces as the langchain splitter's own."""
    chunker = Chunker(embedder.tokenizer, 64, 8)
    text = "\n\n".join(f"Paragraph {i}. " + PROSE[: 50 + 37 * i] for i in range(30))
    chunks = chunker.split(LoadedDocument(None, [Section(text)]))
    assert [c.text for c in chunks] == chunker._splitter.split_text(text)
    _check_chunks(text, chunks, chunker)


def test_a_section_longer_than_a_block_keeps_exact_offsets(embedder):
    chunker = Chunker(embedder.tokenizer, 200, 40)
    text = ("word " * 30 + "\n") * (BLOCK_CHARS // 150 * 2)  # ~2 blocks of ordinary lines
    assert len(text) > BLOCK_CHARS
    chunks = chunker.split(LoadedDocument(None, [Section(text.strip())]))
    _check_chunks(text.strip(), chunks, chunker)


def _hits(cli, index: Path, query: str) -> str:
    """The text of the BM25 hits for ``query``, joined ('' when none)."""
    rc, out, err = cli("search", query, "--index", index, "--mode", "bm25", "--json")
    assert rc == 0, err
    return " ".join(hit["text"] for hit in json.loads(out)["hits"])


# ---- 4. links out of the folder, FIFOs, sockets, broken links, loops ---------------------------------------------
def test_links_out_of_the_folder_are_reported_and_follow_links_follows_them(tmp_path, cli, embedder):
    outside = tmp_path / "outside.txt"
    outside.write_text("outsidemarker " + PROSE)
    folder = _folder(tmp_path, {"inside.txt": PROSE})
    os.symlink("/etc/passwd", folder / "passwd.txt")
    os.symlink(outside, folder / "outside.txt")
    os.symlink("inside.txt", folder / "alias.txt")
    os.symlink("nowhere.txt", folder / "broken.txt")
    os.mkfifo(folder / "pipe.txt")
    index = tmp_path / "index"
    rc, out, err = cli("index", folder, "--index", index, "--json")
    assert rc == 0, err
    report = json.loads(out)
    skipped = dict(report["skipped"])
    assert report["added"] == 2  # inside.txt and alias.txt (a link inside the folder)
    assert "outside the indexed folder" in skipped["passwd.txt"] and "--follow-links" in skipped["passwd.txt"]
    assert "outside the indexed folder" in skipped["outside.txt"]
    assert "broken symbolic link" in skipped["broken.txt"]
    assert "FIFO" in skipped["pipe.txt"]
    assert not _hits(cli, index, "root bin bash nologin") and not _hits(cli, index, "outsidemarker")

    rc, out, err = cli("index", folder, "--index", index, "--json", "--follow-links")
    assert rc == 0, err
    report = json.loads(out)
    assert report["added"] == 2 and "passwd.txt" not in dict(report["skipped"])  # both links now followed
    assert "outsidemarker" in _hits(cli, index, "outsidemarker")


# ---- 5. UTF-16 and compressed PDF/DOCX ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("prefix", "codec"),
    [(codecs.BOM_UTF16_LE, "utf-16-le"), (codecs.BOM_UTF16_BE, "utf-16-be"), (b"", "utf-16-le"), (b"", "utf-16-be")],
)
def test_utf16_text_is_read_with_or_without_bom(tmp_path, prefix, codec):
    text = "Ünïcode text: the heron counted boats — 42 of them.\nSecond line."
    path = tmp_path / "notes.txt"
    path.write_bytes(prefix + text.encode(codec))
    assert load_document(path).text == text


@pytest.mark.parametrize("data", [bytes(range(256)) * 64, b"hello\x00world\x00" * 50, b"\x00" * 4096])
def test_binary_with_nul_bytes_is_still_refused(tmp_path, data):
    path = tmp_path / "blob.txt"
    path.write_bytes(data)
    with pytest.raises(LoadError, match="binary"):
        load_document(path)


@pytest.mark.parametrize("name", ["history/black_death.pdf", "geography/amazon_rainforest.docx"])
def test_gzipped_pdf_and_docx_read_like_the_originals(tmp_path, name):
    original = CORPUS / name
    packed = tmp_path / (original.name + ".gz")
    packed.write_bytes(gzip.compress(original.read_bytes()))
    assert load_document(packed).text == load_document(original).text


# ---- 6. warnings are plain text on one line -----------------------------------------------------------------------
def test_warnings_keep_brackets_and_stay_on_one_line():
    from rich.console import Console

    from sixfold.progress import IndexProgress

    buffer = io.StringIO()
    progress = IndexProgress(Console(file=buffer, width=40, highlight=False, soft_wrap=False))
    progress.warn("skipped [bold]x[/bold].txt: lxml [html-clean] said:\nline two\r\nline three \x1b[31m" + "long " * 30)
    lines = buffer.getvalue().splitlines()
    assert len(lines) == 1, lines
    assert "[bold]x[/bold].txt" in lines[0] and "[html-clean]" in lines[0] and "line two line three" in lines[0]
    assert "\x1b" not in lines[0]


# ---- 7. the hostile corpus, end to end ---------------------------------------------------------------------------
def test_the_hostile_corpus_indexes_cleanly(tmp_path, cli, embedder):
    """~100 hostile files (bench/fuzz_corpus.py --small): exit 0, no traceback, each file indexed (with its own
    words, so decoded right) or reported as skipped with a reason, nothing from outside the folder indexed."""
    fuzz = _fuzz_module()
    corpus = fuzz.make_corpus(tmp_path, small=True)
    assert len(corpus.cases) >= 60
    index = tmp_path / "index"
    started = time.perf_counter()
    rc, out, err = cli("index", corpus.folder, "--index", index, "--json", "--max-file-mb", "1")
    run = {"rc": rc, "stderr": err, "report": json.loads(out) if rc == 0 else None, "seconds": time.perf_counter() - started}
    outcomes, checks = fuzz.evaluate(corpus, run, index)
    bad = [(o.case.path, o.case.expect, o.result, o.reason, o.note) for o in outcomes if not o.ok]
    assert not bad, bad
    assert all(checks.values()), (checks, err[-2000:])
    by_path = {o.case.path: o for o in outcomes}
    assert "over the 1 MB limit" in by_path["gz/bomb_zeros.txt.gz"].reason
    assert by_path["links/passwd.txt"].result == "skipped"
    warnings = [line for line in err.splitlines() if line.strip()]
    assert all(line.startswith("warning: skipped ") for line in warnings), [w for w in warnings if "warning" not in w]
    assert len(warnings) == len(run["report"]["skipped"])  # one line each, newlines in names included
    assert "warning: skipped html/[html-clean] brackets.html: empty file" in err
    assert "/bin/bash" not in _hits(cli, index, "root daemon bin bash nologin")
