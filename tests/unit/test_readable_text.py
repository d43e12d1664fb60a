"""Text files whatever their name, and passages a reader can read (issue 13); model-free, real files on disk."""

from __future__ import annotations

import gzip
import os
import re
from pathlib import Path

import pytest

from sixfold.indexer.chunking import word_window
from sixfold.indexer.loaders import LoadError, load_document, looks_like_text
from sixfold.indexer.pipeline import walk_folder

CHANGELOG = "zlib (1:1.2.13.dfsg-1) unstable; urgency=low\n\n  * New upstream release.\n\n -- Mark Brown  Mon, 9 Jan 2023\n"
COPYRIGHT = "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\nUpstream-Name: zlib\nLicense: Zlib\n"


def write(path: Path, data: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return path


def debian_doc(tmp_path: Path) -> Path:
    folder = tmp_path / "doc" / "zlib1g"
    write(folder / "copyright", COPYRIGHT)
    write(folder / "README.Debian", "Notes for the Debian package: café crème.\n")
    write(folder / "README.venv", "Run python -m venv to make one.\n")
    write(folder / "changelog.Debian.gz", gzip.compress(CHANGELOG.encode()))
    write(folder / "changelog.gz", gzip.compress(b"ChangeLog of the upstream project.\n"))
    write(folder / "libz.so.1", b"\x7fELF\x02\x01\x01\x00" + bytes(range(256)) * 4)  # unknown suffix, binary content
    write(folder / "blob", os.urandom(2048).replace(b"\x00", b"\x01") + b"\x00" * 64)
    write(folder / "logo.png", "text inside, but a .png is never opened")
    write(folder / "pack.tar.gz", gzip.compress(b"plain text in a tarball"))
    return tmp_path / "doc"


# ---- 1. text whatever the name -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "expected"),
    [("copyright", "Upstream-Name: zlib"), ("README.Debian", "café crème"), ("README.venv", "python -m venv"),
     ("changelog.Debian.gz", "New upstream release"), ("changelog.gz", "upstream project")],
)  # fmt: skip
def test_text_files_are_read_whatever_their_name(tmp_path, name, expected):
    document = load_document(debian_doc(tmp_path) / "zlib1g" / name)
    assert expected in document.text


@pytest.mark.parametrize(
    ("name", "suffix"), [("libz.so.1", ".1"), ("blob", "(none)"), ("logo.png", ".png"), ("pack.tar.gz", ".tar")]
)
def test_binary_and_known_binary_suffixes_stay_unsupported(tmp_path, name, suffix):
    with pytest.raises(LoadError, match=re.escape(f"unsupported file type {suffix}")):
        load_document(debian_doc(tmp_path) / "zlib1g" / name)


def test_the_walk_indexes_text_and_counts_what_it_ignores(tmp_path):
    folder = debian_doc(tmp_path)
    os.mkfifo(folder / "zlib1g" / "NEWS")  # no suffix, but never opened: reported, the walk does not block
    skipped: list[tuple[str, str]] = []
    files, unsupported = walk_folder(folder, skipped=skipped)
    names = sorted(p.name for p in files)
    assert names == ["README.Debian", "README.venv", "changelog.Debian.gz", "changelog.gz", "copyright"]
    assert dict(unsupported) == {".1": 1, "(none)": 1, ".png": 1, ".gz": 1}
    assert skipped == [("zlib1g/NEWS", "a named pipe (FIFO), not a file")]


def test_sniffing_reads_a_few_kb_of_a_gzip_bomb_only(tmp_path):
    bomb = tmp_path / "changelog.gz"
    with gzip.open(bomb, "wb") as out:
        out.write(b"changes " * 8192)
        for _ in range(64):
            out.write(b"\0" * (1 << 20))
    assert looks_like_text(bomb)  # the first kB are text; the loader's size cap refuses the rest
    with pytest.raises(LoadError, match="decompresses to over"):
        load_document(bomb)


# ---- 2. passages a reader can read -------------------------------------------------------------------------------
PAGE = """<html><head><title>zlib Usage Example</title></head><body>
<div class="nav"><p>Next: <a href="n.html">Closure Example</a>, Up: <a href="u.html">Using libffi</a>
<a href="i.html">[Index]</a></p></div>
<h1>Abstract<a class="headerlink" href="#abstract">¶</a></h1>
<p>The macro SET_BINARY_MODE sets binary mode; see array[1] and *ptr here, in a long enough paragraph of text.</p>
<pre><b>
#if defined(MSDOS)
#  include &lt;fcntl.h&gt;
#  define SET_BINARY_MODE(file) setmode(fileno(file), O_BINARY)
#else
#  define SET_BINARY_MODE(file)
#endif
</b></pre>
<p>CHUNK is simply the buffer size for feeding data to and pulling data from the zlib routines.</p>
<h2>The deflate loop<a class="headerlink" href="#loop">¶</a></h2>
<p>The loop compresses the input until the end of the file, one chunk of input at a time.</p>
</body></html>"""


def test_html_passages_have_no_escapes_glyphs_navigation_or_code_headings(tmp_path):
    document = load_document(write(tmp_path / "zlib_how.html", PAGE))
    text = document.text
    assert "SET_BINARY_MODE sets" in text and "array[1]" in text and "*ptr" in text
    assert "\\_" not in text and "\\[" not in text and "\\*" not in text and "\\<" not in text
    assert "¶" not in text and "Index]" not in text and "Closure Example" not in text
    assert [s.heading for s in document.sections] == ["Abstract", "The deflate loop"]
    code = next(s for s in document.sections if "#  define SET_BINARY_MODE(file)" in s.text)
    assert code.heading == "Abstract"  # the code's "#  define" lines are not headings of what follows
    chunk_of_loop = next(s for s in document.sections if "one chunk of input" in s.text)
    assert chunk_of_loop.heading == "The deflate loop"


def test_markdown_files_keep_their_headings(tmp_path):
    document = load_document(write(tmp_path / "notes.md", "# Title\nBody right under it.\n\n## Part\ntext\n"))
    assert [s.heading for s in document.sections] == ["Title", "Part"]


def test_snippets_are_cut_at_word_boundaries():
    text = " ".join(f"word{i:03d}" for i in range(200))
    start = text.index("word100")
    end = start + len("word100")
    snippet = word_window(text, start, end, 40)
    assert "word100" in snippet and len(snippet) <= 7 + 2 * 60
    words = text.split()
    assert snippet.split()[0] in words and snippet.split()[-1] in words  # no word cut in two
    assert word_window("short text", 0, 5) == "short text"
    assert word_window("x" * 500, 200, 210, 50) == "x" * 110  # one word longer than the margin: cut where it must be
