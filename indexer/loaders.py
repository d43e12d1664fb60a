"""File -> text with structure (page, heading), one well-kept library per format.

A loader returns a ``LoadedDocument``: its sections in reading order. Offsets of chunks are counted
in the document's ``text`` (the sections joined by blank lines), so a hit can point back into it.
Files that cannot be read raise ``LoadError``; the pipeline skips them with a one-line warning.
A format whose library cannot be imported raises ``LoaderUnavailable``: that is a broken installation,
not a bad file, so the run stops with the fix instead of skipping every file of that format.

Every read is bounded by ``LoadLimits`` (untrusted folders hold gzip bombs and 50 MB one-line logs):
files are read and decompressed in a stream up to the cap, never whole, and never opened unless they
are regular files (a FIFO would block the reader forever).
"""

from __future__ import annotations

import codecs
import gzip
import html
import importlib
import io
import math
import os
import re
import stat
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

from sixfold.core.errors import SixfoldError

SECTION_SEPARATOR = "\n\n"
MB = 1 << 20
# Headings and titles are metadata copied into every chunk of their section: a 1 MB "# hhh..." line would be
# copied into each of its ~6,000 chunks (6 GB). Longer ones are cut to this many characters.
MAX_HEADING_CHARS = 300

# 20 MB of text is ~5x the longest books (the King James Bible is 4.3 MB, a 1000-page text PDF ~3 MB) and
# ~100k chunks, an hour of CPU embedding; a bigger "document" in a folder is nearly always a log or data dump.
DEFAULT_MAX_FILE_MB = 20.0
# PDF and DOCX files carry images and fonts besides their text: their file (and a DOCX's unzipped parts)
# may be this many times the text cap; the text extracted from them is held to the cap itself.
CONTAINER_FACTOR = 5


class LoadError(SixfoldError):
    """This one file cannot be indexed (binary, corrupt, empty, unreadable, over the size limit)."""


class LoaderUnavailable(SixfoldError):
    """The library that reads a format cannot be imported: fix the installation (not a bad file; stops the run)."""


@dataclass(frozen=True)
class LoadLimits:
    """Caps on what loading one file may read, decompress or extract."""

    max_file_mb: float = DEFAULT_MAX_FILE_MB

    def __post_init__(self) -> None:
        if not (isinstance(self.max_file_mb, int | float) and math.isfinite(self.max_file_mb) and self.max_file_mb > 0):
            raise SixfoldError(f"the per-file limit must be a positive number of MB, got {self.max_file_mb}")

    @property
    def max_bytes(self) -> int:
        """Bytes of a text/markdown/HTML file (after gunzip), characters of text extracted from PDF/DOCX."""
        return int(self.max_file_mb * MB)

    @property
    def container_bytes(self) -> int:
        """Bytes of a PDF/DOCX file (after gunzip), and of a DOCX's parts once unzipped."""
        return self.max_bytes * CONTAINER_FACTOR


DEFAULT_LIMITS = LoadLimits()


def _too_big(what: str, limit: int) -> LoadError:
    return LoadError(f"{what} over the {limit / MB:.3g} MB limit per file (raise it with --max-file-mb)")


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
# Known binary formats: never opened to sniff. Any other suffix (or none: ``copyright``, ``README.Debian``,
# ``changelog.Debian.gz``) is read as plain text when its first bytes are text (``looks_like_text``).
BINARY_SUFFIXES = set(
    ".png .jpg .jpeg .gif .bmp .tif .tiff .ico .webp .svgz .psd .xcf .heic .avif "
    ".mp3 .mp4 .m4a .ogg .oga .ogv .opus .flac .wav .avi .mkv .mov .webm .mid .midi "
    ".zip .tar .tgz .tbz .tbz2 .txz .bz2 .xz .zst .lz .lz4 .lzma .7z .rar .cab .jar .war .whl .egg .deb .rpm .apk .iso "
    ".img .dmg .so .a .o .ko .dll .exe .dylib .lib .bin .elf .pyc .pyo .pyd .class .wasm .beam .mo .gmo "
    ".ttf .otf .woff .woff2 .eot .pfb .pfm .db .sqlite .sqlite3 .mdb .dat .pack .idx .npy .npz .pkl .pickle "
    ".pt .pth .onnx .safetensors .gguf .h5 .hdf5 .parquet .arrow .feather .faiss .doc .xls .xlsx .ppt .pptx .odt "
    ".ods .odp .epub .dvi .ps .eps .swf .sig .gpg .der .p12 .pfx".split()
)
SNIFF_BYTES = 8192

# import name -> what to pip install, where they differ
_PIP_NAMES = {"docx": "python-docx", "bs4": "beautifulsoup4", "charset_normalizer": "charset-normalizer", "lxml": "lxml"}


def format_suffix(path: Path) -> str:
    """The suffix that decides the loader; ``x.txt.gz`` is a gzip-compressed ``.txt``."""
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] == ".gz" and len(suffixes) >= 2:
        return suffixes[-2]
    return path.suffix.lower()


def is_supported(path: Path) -> bool:
    """A format with its own loader, known from the name alone."""
    return format_suffix(path) in SUPPORTED_SUFFIXES


def may_be_text(path: Path) -> bool:
    """Not a known format nor a known binary one: read as text if ``looks_like_text`` says its content is text."""
    suffix = format_suffix(path)
    return suffix not in SUPPORTED_SUFFIXES and suffix not in BINARY_SUFFIXES


def _missing_module(exc: ImportError, fallback: str) -> str:
    """The module that is really missing: the innermost ``ModuleNotFoundError`` in the chain.

    lxml 6 raises a bare ``ImportError`` ("lxml.html.clean module is now a separate project ...") *from None*
    over the ``ModuleNotFoundError: No module named 'lxml_html_clean'``; the context still holds the name.
    """
    seen: set[int] = set()
    found: str | None = None
    error: BaseException | None = exc
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, ImportError) and error.name:
            found = error.name
        if not found:
            match = re.search(r"No module named '([\w.]+)'|separate project (\w+)", str(error))
            if match:
                found = match.group(1) or match.group(2)
        error = error.__cause__ or error.__context__
    return (found or fallback).split(".")[0]


def unavailable(suffix: str, library: str, exc: ImportError) -> LoaderUnavailable:
    """The one-line error for a format whose library does not import, with the pip command that fixes it."""
    module = _missing_module(exc, library)
    reason = " ".join(str(exc).split()) or type(exc).__name__
    return LoaderUnavailable(
        f"cannot read {suffix} files: {library} failed to import ({reason}); "
        f"install it with: pip install {_PIP_NAMES.get(module, module)}"
    )


def _import(library: str, suffix: str) -> ModuleType:
    try:
        return importlib.import_module(library)
    except ImportError as exc:
        raise unavailable(suffix, library, exc) from exc


def _open_regular(path: Path):
    """Open for reading without blocking on a FIFO (O_NONBLOCK), and refuse anything but a regular file."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    handle = os.fdopen(fd, "rb")
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        handle.close()
        raise LoadError("not a regular file")
    return handle


def _read_bytes(path: Path, limit: int) -> bytes:
    """The file's bytes (gunzipped in a stream for ``.gz``), at most ``limit`` of them or LoadError."""
    gz = path.suffix.lower() == ".gz"
    try:
        handle = _open_regular(path)
    except OSError as exc:
        raise LoadError(f"cannot read: {exc.strerror or exc}") from None
    with handle:
        try:
            if gz:
                with gzip.GzipFile(fileobj=handle) as stream:
                    data = stream.read(limit + 1)
            else:
                data = handle.read(limit + 1)
        except (gzip.BadGzipFile, EOFError, zlib.error) as exc:
            raise LoadError(f"corrupt gzip file: {exc}") from None
        except OSError as exc:
            raise LoadError(f"cannot read: {exc.strerror or exc}") from None
    if len(data) > limit:
        raise _too_big("decompresses to" if gz else "file is", limit)
    if not data.strip():
        raise LoadError("empty file")
    return data


def _utf16_without_bom(sample: bytes) -> str | None:
    """``utf-16-le``/``-be`` when the sample has the NUL in every other byte of mostly-Latin UTF-16 text.

    Latin-script UTF-16 has a zero high byte in nearly every character (70% asks for that, allowing some
    non-Latin text); binary data with NULs scattered on both byte positions, or on one of them now and then
    (``hello\\0world\\0``), stays binary.
    """
    half = len(sample) // 2
    if half < 2:
        return None
    even = sample[0 : 2 * half : 2].count(0)
    odd = sample[1 : 2 * half : 2].count(0)
    if odd >= 0.7 * half and even <= 0.02 * half:
        return "utf-16-le"
    if even >= 0.7 * half and odd <= 0.02 * half:
        return "utf-16-be"
    return None


def _printable(text: str) -> bool:
    """Mostly printable: at most 1 in 100 characters a control character other than tab, newline, CR, FF."""
    if not text.strip():
        return False
    controls = sum(1 for ch in text if (ch < " " and ch not in "\t\n\r\f\v\x1b") or "\x7f" <= ch < "\xa0")
    return controls <= len(text) // 100


def looks_like_text(path: Path) -> bool:
    """Whether a file of unknown type holds text: its first ``SNIFF_BYTES`` (gunzipped for ``.gz``) have no NULs
    (or are UTF-16/32), decode as UTF-8 or a detected encoding, and are mostly printable.

    Only regular files are opened (without blocking: a FIFO is refused, never read), and at most a few kB are read
    or inflated, so a gzip bomb or a huge file costs nothing here.
    """
    try:
        handle = _open_regular(path)
    except (OSError, LoadError):
        return False
    with handle:
        try:
            if path.suffix.lower() == ".gz":
                with gzip.GzipFile(fileobj=handle) as stream:
                    sample = stream.read(SNIFF_BYTES)
            else:
                sample = handle.read(SNIFF_BYTES)
        except (gzip.BadGzipFile, EOFError, zlib.error, OSError):
            return False
    if not sample.strip():
        return False
    for bom, codec in ((codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"), (codecs.BOM_UTF16_LE, "utf-16"),
                       (codecs.BOM_UTF16_BE, "utf-16")):  # fmt: skip
        if sample.startswith(bom):
            return _printable(codecs.getincrementaldecoder(codec)("replace").decode(sample))
    if b"\x00" in sample:
        utf16 = _utf16_without_bom(sample)
        return utf16 is not None and _printable(sample[: len(sample) // 2 * 2].decode(utf16, "replace"))
    try:
        return _printable(codecs.getincrementaldecoder("utf-8")().decode(sample))  # a cut last character is fine
    except UnicodeDecodeError:
        pass
    best = _import("charset_normalizer", "text").from_bytes(sample).best()
    return best is not None and _printable(str(best))


def _decode(data: bytes) -> str:
    for bom, codec in ((codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"), (codecs.BOM_UTF16_LE, "utf-16"),
                       (codecs.BOM_UTF16_BE, "utf-16")):  # fmt: skip
        if data.startswith(bom):
            try:
                return data.decode(codec).replace("\x00", "")
            except UnicodeDecodeError:
                raise LoadError(f"not valid {codec.upper()} text despite its byte-order mark") from None
    if b"\x00" in data[:8192]:
        utf16 = _utf16_without_bom(data[:8192])
        if utf16 is None:
            raise LoadError("binary content in a text file")
        try:
            return data[: len(data) // 2 * 2].decode(utf16).replace("\x00", "")
        except UnicodeDecodeError:
            raise LoadError("binary content in a text file") from None
    try:
        return data.decode("utf-8-sig").replace("\x00", "")
    except UnicodeDecodeError:
        pass
    from_bytes = _import("charset_normalizer", "text").from_bytes
    best = from_bytes(data).best()
    if best is None:
        raise LoadError("not text in any known encoding")
    return str(best).replace("\x00", "")


_MD_HEADING = re.compile(r"(#{1,6})\s+(.+)")  # matched on the right-stripped line: no backtracking on long lines


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
            heading, body = starts[:MAX_HEADING_CHARS], []
        body.append(line)
    flush()
    return sections


def split_markdown(text: str) -> list[Section]:
    """Sections at markdown headings; each section keeps its heading line as its first line."""

    def headed(line: str) -> tuple[str, str | None]:
        match = _MD_HEADING.match(line.rstrip()) if line.startswith("#") else None
        if match is None:
            return line, None
        return line, match.group(2).rstrip("#").strip() or match.group(2).strip()

    return group_sections(headed(line) for line in text.splitlines())


_MD_ESCAPE = re.compile(r"\\([\\`*_{}\[\]()#+\-.!<>|~=])")
# Permalink anchors that HTML generators put in headings (Sphinx "¶", "§", link symbols), alone or as a link
_ANCHOR = re.compile(r"\s*(?:\[\s*[¶§#🔗\uf0c1⚓]\s*\]\([^)]*\)|[¶🔗\uf0c1⚓])")
# Navigation lines of texinfo/DocBook pages: "Next: X, Previous: Y, Up: Z [Index]", "[Contents][Index]", "Anterior | Inicio"
_NAV_WORDS = r"next|previous|prev|up|home|top|contents|index|anterior|siguiente|subir|inicio|arriba|suivant|précédent"
_NAV_LINE = re.compile(rf"^\s*(?:(?:\\?\[\s*)?(?:{_NAV_WORDS})(?:\s*\\?\])?(?:\s*:[^,\[\]|\\]*)?[\s,|·»«]*)+$", re.IGNORECASE)


def unescape_markdown(text: str) -> str:
    """``\\[Index\\]`` -> ``[Index]``, ``SET\\_BINARY\\_MODE`` -> ``SET_BINARY_MODE``: trafilatura's markdown escapes."""
    return _MD_ESCAPE.sub(r"\1", text)


def clean_heading(heading: str) -> str:
    """A heading without permalink glyphs (``Abstract¶`` -> ``Abstract``) nor markdown escapes."""
    return unescape_markdown(_ANCHOR.sub("", heading)).strip()


def split_extracted_markdown(text: str) -> list[Section]:
    """Sections of the markdown trafilatura makes of a page, as a reader should see them.

    A heading is a ``#`` line that stands alone between blank lines: trafilatura writes headings so, while the
    ``#`` lines of a code listing (``#  define SET_BINARY_MODE(file)``, ``# comment`` in a config file) sit among
    other lines, and made stale headings of every later chunk. Navigation lines are dropped, permalink glyphs
    removed from headings, and the markdown escapes removed from the text.
    """
    lines = text.splitlines()

    def blank(i: int) -> bool:
        return not (0 <= i < len(lines)) or not lines[i].strip()

    def marked() -> Iterator[tuple[str, str | None]]:
        for i, line in enumerate(lines):
            if _NAV_LINE.match(line) and line.strip():
                continue
            match = _MD_HEADING.match(line.rstrip()) if line.startswith("#") and blank(i - 1) and blank(i + 1) else None
            if match is None:
                yield unescape_markdown(line), None
                continue
            heading = clean_heading(match.group(2).rstrip("#").strip() or match.group(2))
            yield f"{match.group(1)} {heading}", heading or None

    return group_sections(marked())


def _first_heading(sections: list[Section]) -> str | None:
    return next((s.heading for s in sections if s.heading), None)


def _check_text_size(sections: list[Section], limits: LoadLimits) -> None:
    if sum(len(s.text) for s in sections) > limits.max_bytes:
        raise _too_big("extracted text is", limits.max_bytes)


def load_text(path: Path, limits: LoadLimits = DEFAULT_LIMITS) -> LoadedDocument:
    text = _decode(_read_bytes(path, limits.max_bytes)).strip()
    if not text:
        raise LoadError("empty file")
    return LoadedDocument(title=None, sections=[Section(text)])


def load_markdown(path: Path, limits: LoadLimits = DEFAULT_LIMITS) -> LoadedDocument:
    sections = split_markdown(_decode(_read_bytes(path, limits.max_bytes)))
    if not sections:
        raise LoadError("empty file")
    return LoadedDocument(title=_first_heading(sections), sections=sections)


_TITLE = re.compile(r"<title[^>]*>(.*?)</title>", re.IGNORECASE | re.DOTALL)


def load_html(path: Path, limits: LoadLimits = DEFAULT_LIMITS) -> LoadedDocument:
    """Main text of a page with trafilatura (markdown out, so headings survive); BeautifulSoup as fallback."""
    suffix = format_suffix(path)
    trafilatura = _import("trafilatura", suffix)
    markup = _decode(_read_bytes(path, limits.max_bytes))
    try:
        text = trafilatura.extract(
            markup, output_format="markdown", include_tables=True, include_comments=False, favor_recall=True
        )
    except ImportError as exc:  # trafilatura imports some of its helpers lazily
        raise unavailable(suffix, "trafilatura", exc) from exc
    except RecursionError:
        text = None
    sections = split_extracted_markdown(text) if text and text.strip() else []
    if not sections:
        beautiful_soup = _import("bs4", suffix).BeautifulSoup
        try:
            soup = beautiful_soup(markup, "html.parser")
            for tag in soup(["script", "style", "noscript"]):
                tag.decompose()
            text = re.sub(r"\n\s*\n+", "\n\n", soup.get_text("\n")).strip()
        except RecursionError:
            raise LoadError("HTML nested too deeply to read") from None
        sections = split_markdown(text or "")
    if not sections:
        raise LoadError("no text in the page")
    match = _TITLE.search(markup[:20000])
    title = html.unescape(" ".join(match.group(1).split())) if match else None
    return LoadedDocument(title=title or _first_heading(sections), sections=sections)


def load_pdf(path: Path, limits: LoadLimits = DEFAULT_LIMITS) -> LoadedDocument:
    """The text layer of each page with pypdf; a page is a section. ``.pdf.gz`` is read from memory."""
    import logging

    suffix = format_suffix(path)
    pypdf = _import("pypdf", suffix)
    errors = _import("pypdf.errors", suffix)
    logging.getLogger("pypdf").setLevel(logging.ERROR)
    data = _read_bytes(path, limits.container_bytes)
    try:
        reader = pypdf.PdfReader(io.BytesIO(data))
        if reader.is_encrypted and not reader.decrypt(""):
            raise LoadError("encrypted PDF")
        sections = []
        extracted = 0
        for number, page in enumerate(reader.pages, start=1):
            text = (page.extract_text() or "").strip()
            if text:
                sections.append(Section(text, page=number))
                extracted += len(text)
                if extracted > limits.max_bytes:
                    raise _too_big("extracted text is", limits.max_bytes)
        title = (reader.metadata.title if reader.metadata else None) or None
    except LoadError:
        raise
    except errors.LimitReachedError as exc:
        raise LoadError(f"PDF over pypdf's safety limits: {exc}") from None
    except (errors.PyPdfError, ValueError, KeyError, TypeError, OSError, AssertionError, RecursionError) as exc:
        raise LoadError(f"corrupt PDF: {exc}") from None
    if not sections:
        raise LoadError("PDF has no text layer (scanned?)")
    return LoadedDocument(title=title if isinstance(title, str) else None, sections=sections)


def load_docx(path: Path, limits: LoadLimits = DEFAULT_LIMITS) -> LoadedDocument:
    """Paragraphs and tables with python-docx; Word heading styles start sections. ``.docx.gz`` is read from memory.

    The zip's declared sizes are checked first (zipfile never inflates a member past its declared size), so a
    zip bomb is refused before python-docx unpacks it.
    """
    import zipfile

    suffix = format_suffix(path)
    docx = _import("docx", suffix)
    data = _read_bytes(path, limits.container_bytes)
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            unpacked = sum(info.file_size for info in archive.infolist())
        if unpacked > limits.container_bytes:
            raise _too_big("DOCX unzips to", limits.container_bytes)
        document = docx.Document(io.BytesIO(data))
    except LoadError:
        raise
    except (zipfile.BadZipFile, zipfile.LargeZipFile, KeyError, ValueError, OSError, EOFError, zlib.error) as exc:
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
    _check_text_size(sections, limits)
    title = document.core_properties.title or _first_heading(sections)
    return LoadedDocument(title=title or None, sections=sections)


def load_document(path: Path, limits: LoadLimits | None = None) -> LoadedDocument:
    """Load one file by its format within ``limits``; LoadError when it cannot be indexed, LoaderUnavailable when
    the format's library is broken."""
    limits = limits or DEFAULT_LIMITS
    suffix = format_suffix(path)
    loaders = {**dict.fromkeys(MARKDOWN_SUFFIXES, load_markdown), **dict.fromkeys(HTML_SUFFIXES, load_html)}
    loaders |= {**dict.fromkeys(PDF_SUFFIXES, load_pdf), **dict.fromkeys(DOCX_SUFFIXES, load_docx)}
    loaders |= dict.fromkeys(TEXT_SUFFIXES, load_text)
    if suffix in loaders:
        document = loaders[suffix](path, limits)
    elif may_be_text(path) and looks_like_text(path):
        document = load_text(path, limits)
    else:
        raise LoadError(f"unsupported file type {suffix or '(none)'}")
    if document.title:
        document.title = " ".join(document.title.split())[:MAX_HEADING_CHARS]
    return document
