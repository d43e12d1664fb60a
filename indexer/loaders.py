"""File -> text with structure (page, heading), one well-kept library per format.

A loader returns a ``LoadedDocument``: its sections in reading order. Offsets of chunks are counted
in the document's ``text`` (the sections joined by blank lines), so a hit can point back into it.
Files that cannot be read raise ``LoadError``; the pipeline skips them with a one-line warning.
"""

from __future__ import annotations

import gzip
import html
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from indexer.errors import SixfoldError

SECTION_SEPARATOR = "\n\n"


class LoadError(SixfoldError):
    """This one file cannot be indexed (binary, corrupt, empty, unreadable)."""


@dataclass
class Section:
    text: str
    page: int | None = None
    heading: str | None = None


@dataclass
class LoadedDocument:
    title: str | None
    sections: list[Section] = field(default_factory=list)

    @property
    def text(self) -> str:
        return SECTION_SEPARATOR.join(s.text for s in self.sections)


TEXT_SUFFIXES = {".txt", ".text", ".rst", ".log", ".csv"}
MARKDOWN_SUFFIXES = {".md", ".markdown"}
HTML_SUFFIXES = {".html", ".htm", ".xhtml"}
PDF_SUFFIXES = {".pdf"}
DOCX_SUFFIXES = {".docx"}
SUPPORTED_SUFFIXES = TEXT_SUFFIXES | MARKDOWN_SUFFIXES | HTML_SUFFIXES | PDF_SUFFIXES | DOCX_SUFFIXES


def format_suffix(path: Path) -> str:
    """The suffix that decides the loader; ``x.txt.gz`` is a gzip-compressed ``.txt``."""
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] == ".gz" and len(suffixes) >= 2:
        return suffixes[-2]
    return path.suffix.lower()


def is_supported(path: Path) -> bool:
    return format_suffix(path) in SUPPORTED_SUFFIXES


def _read_bytes(path: Path) -> bytes:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise LoadError(f"cannot read: {exc.strerror or exc}") from None
    if path.suffix.lower() == ".gz":
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError) as exc:
            raise LoadError(f"corrupt gzip file: {exc}") from None
    if not data.strip():
        raise LoadError("empty file")
    return data


def _decode(data: bytes) -> str:
    if b"\x00" in data[:8192]:
        raise LoadError("binary content in a text file")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    from charset_normalizer import from_bytes

    best = from_bytes(data).best()
    if best is None:
        raise LoadError("not text in any known encoding")
    return str(best)


_MD_HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")


def group_sections(lines: Iterable[tuple[str, str | None]]) -> list[Section]:
    """Group (line, heading) pairs into sections; a line with a heading starts a new section and stays its first line."""
    sections: list[Section] = []
    heading: str | None = None
    body: list[str] = []

    def flush() -> None:
        text = "\n".join(body).strip()
        if text:
            sections.append(Section(text, heading=heading))

    for line, starts in lines:
        if starts is not None:
            flush()
            heading, body = starts, []
        body.append(line)
    flush()
    return sections


def split_markdown(text: str) -> list[Section]:
    """Sections at markdown headings; each section keeps its heading line as its first line."""

    def headed(line: str) -> tuple[str, str | None]:
        match = _MD_HEADING.match(line)
        return line, match.group(2).strip() if match else None

    return group_sections(headed(line) for line in text.splitlines())


def _first_heading(sections: list[Section]) -> str | None:
    return next((s.heading for s in sections if s.heading), None)


def load_text(path: Path) -> LoadedDocument:
    text = _decode(_read_bytes(path)).strip()
    if not text:
        raise LoadError("empty file")
    return LoadedDocument(title=None, sections=[Section(text)])


def load_markdown(path: Path) -> LoadedDocument:
    sections = split_markdown(_decode(_read_bytes(path)))
    if not sections:
        raise LoadError("empty file")
    return LoadedDocument(title=_first_heading(sections), sections=sections)


_TITLE = re.compile(r"<title[^>]*>(.*?)</title>", re.IGNORECASE | re.DOTALL)


def load_html(path: Path) -> LoadedDocument:
    """Main text of a page with trafilatura (markdown out, so headings survive); BeautifulSoup as fallback."""
    import trafilatura

    markup = _decode(_read_bytes(path))
    text = trafilatura.extract(markup, output_format="markdown", include_tables=True, include_comments=False, favor_recall=True)
    if not text or not text.strip():
        from bs4 import BeautifulSoup

        soup = BeautifulSoup(markup, "html.parser")
        for tag in soup(["script", "style", "noscript"]):
            tag.decompose()
        text = re.sub(r"\n\s*\n+", "\n\n", soup.get_text("\n")).strip()
    sections = split_markdown(text or "")
    if not sections:
        raise LoadError("no text in the page")
    match = _TITLE.search(markup[:20000])
    title = html.unescape(" ".join(match.group(1).split())) if match else None
    return LoadedDocument(title=title or _first_heading(sections), sections=sections)


def load_pdf(path: Path) -> LoadedDocument:
    """The text layer of each page with pypdf; a page is a section."""
    import logging

    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    logging.getLogger("pypdf").setLevel(logging.ERROR)
    _read_bytes(path)  # empty / unreadable checks
    try:
        reader = PdfReader(str(path))
        if reader.is_encrypted and not reader.decrypt(""):
            raise LoadError("encrypted PDF")
        sections = []
        for number, page in enumerate(reader.pages, start=1):
            text = (page.extract_text() or "").strip()
            if text:
                sections.append(Section(text, page=number))
        title = (reader.metadata.title if reader.metadata else None) or None
    except LoadError:
        raise
    except (PdfReadError, ValueError, KeyError, TypeError, OSError, AssertionError) as exc:
        raise LoadError(f"corrupt PDF: {exc}") from None
    if not sections:
        raise LoadError("PDF has no text layer (scanned?)")
    return LoadedDocument(title=title, sections=sections)


def load_docx(path: Path) -> LoadedDocument:
    """Paragraphs and tables with python-docx; Word heading styles start sections."""
    import zipfile

    import docx

    _read_bytes(path)
    try:
        document = docx.Document(str(path))
    except (zipfile.BadZipFile, KeyError, ValueError) as exc:
        raise LoadError(f"corrupt DOCX: {exc}") from None

    def lines() -> Iterator[tuple[str, str | None]]:
        for paragraph in document.paragraphs:
            text = paragraph.text.strip()
            style = (paragraph.style.name or "") if paragraph.style is not None else ""
            if text:
                yield text, text if style.startswith("Heading") or style == "Title" else None
        for table in document.tables:
            for row in table.rows:
                cells = [c.text.strip() for c in row.cells if c.text.strip()]
                if cells:
                    yield " | ".join(cells), None

    sections = group_sections(lines())
    if not sections:
        raise LoadError("no text in the document")
    title = document.core_properties.title or _first_heading(sections)
    return LoadedDocument(title=title or None, sections=sections)


def load_document(path: Path) -> LoadedDocument:
    """Load one file by its format; raises LoadError when it cannot be indexed."""
    suffix = format_suffix(path)
    if suffix in MARKDOWN_SUFFIXES:
        return load_markdown(path)
    if suffix in HTML_SUFFIXES:
        return load_html(path)
    if suffix in PDF_SUFFIXES:
        return load_pdf(path)
    if suffix in DOCX_SUFFIXES:
        return load_docx(path)
    if suffix in TEXT_SUFFIXES:
        return load_text(path)
    raise LoadError(f"unsupported file type {suffix or '(none)'}")
