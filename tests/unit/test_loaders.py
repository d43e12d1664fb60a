"""File loaders (indexer/loaders.py) on small files written here: each format, gzip, encodings, limits, failures."""

from __future__ import annotations

import codecs
import gzip
import importlib
import os
from pathlib import Path

import docx
import pytest
from fpdf import FPDF

from sixfold.core.errors import SixfoldError
from sixfold.indexer import loaders
from sixfold.indexer.loaders import (
    MAX_HEADING_CHARS,
    LoadError,
    LoaderUnavailable,
    LoadLimits,
    format_suffix,
    is_supported,
    load_document,
)


def write(path: Path, data: bytes | str) -> Path:
    path.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
    return path


def make_pdf(path: Path, pages: list[str], title: str | None = None) -> Path:
    pdf = FPDF()
    if title:
        pdf.set_title(title)
    pdf.set_font("helvetica", size=12)
    for text in pages:
        pdf.add_page()
        if text:
            pdf.multi_cell(0, 10, text)
    pdf.output(str(path))
    return path


def make_docx(path: Path) -> Path:
    document = docx.Document()
    document.core_properties.title = "Rainforests"
    document.add_heading("Amazon", level=1)
    document.add_paragraph("Most of the Amazon rainforest is in Brazil.")
    document.add_heading("Congo", level=1)
    document.add_paragraph("The Congo basin is the second largest.")
    table = document.add_table(rows=1, cols=2)
    table.rows[0].cells[0].text = "area"
    table.rows[0].cells[1].text = "5.5 million km2"
    document.save(str(path))
    return path


# ---- formats ---------------------------------------------------------------------------------------------------
def test_text_is_one_section_without_title(tmp_path):
    document = load_document(write(tmp_path / "a.txt", "  The steam engine.\n\nIt turns heat into work.\n\n"))
    assert document.title is None
    assert [s.text for s in document.sections] == ["The steam engine.\n\nIt turns heat into work."]
    assert document.text == document.sections[0].text


def test_markdown_sections_start_at_headings(tmp_path):
    source = "intro line\n\n# Normans ##\nThey came from Normandy.\n\n## Rollo\nA Viking leader.\n#hashtag is not a heading\n"
    document = load_document(write(tmp_path / "n.md", source))
    assert [s.heading for s in document.sections] == [None, "Normans", "Rollo"]
    assert document.sections[1].text == "# Normans ##\nThey came from Normandy."
    assert document.sections[2].text.endswith("#hashtag is not a heading")
    assert document.title == "Normans"
    assert document.text == "\n\n".join(s.text for s in document.sections)


def test_long_headings_and_titles_are_cut(tmp_path):
    document = load_document(write(tmp_path / "long.md", "# " + "h" * 5000 + "\nbody text"))
    assert len(document.sections[0].heading) == MAX_HEADING_CHARS
    assert len(document.title) == MAX_HEADING_CHARS


def test_html_keeps_the_article_and_its_title(tmp_path):
    page = (
        "<html><head><title>Oxygen &amp; air</title><style>.x{margin:0}</style><script>var x = 1;</script></head>"
        "<body><nav><a href='/'>Home</a></nav><article><h1>Oxygen</h1>"
        + "<p>Oxygen is the chemical element with atomic number 8 and a member of the chalcogen group.</p>" * 3
        + "</article></body></html>"
    )
    document = load_document(write(tmp_path / "o.html", page))
    assert document.title == "Oxygen & air"
    assert "atomic number 8" in document.text
    assert "var x" not in document.text and "margin" not in document.text


def test_pdf_pages_are_sections_with_their_page_number(tmp_path):
    pages = ["Plague reached Europe in 1347.", "", "A third of Europe died."]  # page 2 has no text
    document = load_document(make_pdf(tmp_path / "p.pdf", pages, "Black Death"))
    assert document.title == "Black Death"
    assert [(s.page, s.text) for s in document.sections] == [(1, pages[0]), (3, pages[2])]


def test_docx_headings_start_sections_and_tables_are_read(tmp_path):
    document = load_document(make_docx(tmp_path / "r.docx"))
    assert document.title == "Rainforests"
    assert [s.heading for s in document.sections] == ["Amazon", "Congo"]
    assert document.sections[0].text == "Amazon\nMost of the Amazon rainforest is in Brazil."
    assert document.sections[1].text.endswith("area | 5.5 million km2")


PLAIN = {
    "txt": lambda path: write(path, "gzip text"),
    "md": lambda path: write(path, "# Head\nbody"),
    "pdf": lambda path: make_pdf(path, ["pdf page"]),
    "docx": make_docx,
}


@pytest.mark.parametrize("kind", sorted(PLAIN))
def test_gzipped_files_read_like_the_plain_ones(tmp_path, kind):
    plain = PLAIN[kind](tmp_path / f"plain.{kind}")
    packed = write(tmp_path / f"packed.{kind}.GZ", gzip.compress(plain.read_bytes()))
    assert format_suffix(packed) == f".{kind}"
    assert load_document(packed) == load_document(plain)


# ---- encodings -------------------------------------------------------------------------------------------------
# Natural French: charset-normalizer tells cp1252 from its Central European cousins by the language (a few words of
# "Café crème, naïve façade" come out as cp1257).
TEXT = (
    "Le château de Versailles est célèbre. Les élèves français étudient l'histoire de la Révolution, où le peuple a "
    "pris la Bastille. À Noël, on mange une bûche et des crêpes."
)


@pytest.mark.parametrize(
    "data",
    [
        TEXT.encode("utf-8"),
        codecs.BOM_UTF8 + TEXT.encode("utf-8"),
        TEXT.encode("utf-16"),  # with a byte-order mark
        TEXT.encode("utf-16-le"),  # without one
        TEXT.encode("utf-16-be"),
        TEXT.encode("utf-32"),
        TEXT.encode("cp1252"),
    ],
    ids=["utf-8", "utf-8-sig", "utf-16", "utf-16-le", "utf-16-be", "utf-32", "cp1252"],
)
def test_encodings_are_detected(tmp_path, data):
    assert load_document(write(tmp_path / "t.txt", data)).text == TEXT.strip()


def test_nul_characters_are_dropped_after_decoding(tmp_path):
    data = codecs.BOM_UTF16_LE + "hello\x00 world".encode("utf-16-le")
    assert load_document(write(tmp_path / "n.txt", data)).text == "hello world"


# ---- files that cannot be indexed --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "data", "message"),
    [
        ("empty.txt", b"", "empty file"),
        ("blank.md", b" \n\t\n", "empty file"),
        ("binary.txt", bytes(range(256)) * 8, "binary content"),
        ("scattered.txt", b"hello\x00world\x00" * 50, "binary content"),
        ("bad-bom.txt", codecs.BOM_UTF16_LE + b"\x00\xd8", "despite its byte-order mark"),
        ("garbage.pdf", b"%PDF-1.4 not really a pdf" * 10, "PDF"),
        ("garbage.docx", b"PK\x03\x04 not a zip" * 10, "corrupt DOCX"),
        ("broken.txt.gz", b"\x1f\x8b\x08\x00 truncated", "corrupt gzip"),
        ("image.png", b"\x89PNG", "unsupported file type .png"),
        ("core", b"\x7fELF\x02\x01\x00\x00" * 50, r"unsupported file type \(none\)"),  # a text Makefile is read
    ],
)
def test_unreadable_files_are_load_errors(tmp_path, name, data, message):
    with pytest.raises(LoadError, match=message) as info:
        load_document(write(tmp_path / name, data))
    assert "\n" not in str(info.value)


def test_a_pdf_without_text_layer(tmp_path):
    with pytest.raises(LoadError, match="no text layer"):
        load_document(make_pdf(tmp_path / "scan.pdf", [""]))


def test_a_fifo_is_refused_without_blocking(tmp_path):
    fifo = tmp_path / "pipe.txt"
    os.mkfifo(fifo)
    with pytest.raises(LoadError, match="not a regular file"):
        load_document(fifo)


def test_size_limits(tmp_path):
    limits = LoadLimits(max_file_mb=0.001)  # 1048 bytes
    assert limits.max_bytes == 1048 and limits.container_bytes == 5 * 1048
    with pytest.raises(LoadError, match=r"file is over the 0.000999 MB limit per file \(raise it with --max-file-mb\)"):
        load_document(write(tmp_path / "big.txt", "word " * 300), limits)
    bomb = write(tmp_path / "bomb.txt.gz", gzip.compress(b"a" * 100_000))
    assert bomb.stat().st_size < 1048
    with pytest.raises(LoadError, match="decompresses to over"):
        load_document(bomb, limits)
    load_document(write(tmp_path / "small.txt", "word " * 100), limits)


@pytest.mark.parametrize("value", [0, -1, float("nan"), float("inf"), "10"])
def test_a_bad_limit_is_refused(value):
    with pytest.raises(SixfoldError, match="positive number of MB"):
        LoadLimits(max_file_mb=value)


def test_suffixes():
    assert format_suffix(Path("a/b.TXT.gz")) == ".txt" and format_suffix(Path("x.gz")) == ".gz"
    assert is_supported(Path("notes.Markdown")) and is_supported(Path("page.xhtml.gz"))
    assert not is_supported(Path("archive.tar.gz")) and not is_supported(Path("photo.jpg"))


@pytest.mark.parametrize(("module", "fix"), [("pypdf", "pip install pypdf"), ("docx", "pip install python-docx")])
def test_a_broken_library_stops_with_the_fix(tmp_path, monkeypatch, module, fix):
    real_import = importlib.import_module

    def import_module(name, *args):
        if name == module:
            raise ModuleNotFoundError(f"No module named '{name}'", name=name)
        return real_import(name, *args)

    monkeypatch.setattr(loaders.importlib, "import_module", import_module)
    path = make_pdf(tmp_path / "x.pdf", ["text"]) if module == "pypdf" else make_docx(tmp_path / "x.docx")
    with pytest.raises(LoaderUnavailable, match=fix):
        load_document(path)
