"""Index a folder of malformed and hostile files and check the indexer survives it.

    .venv/bin/python bench/fuzz_corpus.py                       # full corpus (~100 files, 1 GiB bombs), 8 GiB address-space cap
    .venv/bin/python bench/fuzz_corpus.py --small --max-file-mb 1   # the subset tests/test_hostile_files.py uses

``make_corpus`` writes the files (truncated and corrupt PDF/DOCX/gzip, gzip and zip bombs, huge one-line
files, NUL-filled and random bytes under text suffixes, UTF-16/32 with and without BOM, legacy encodings,
deeply nested and 100k-tag HTML, empty and whitespace-only files, odd names, symbolic links out of the
folder, broken links and loops, a FIFO, a socket) and says for each what should happen to it. ``run_index``
runs ``python -m sixfold index --json`` on it in a subprocess under an address-space cap
(``RLIMIT_AS``) and a time limit; ``evaluate`` checks every file against the index (DuckDB) and the report.

Prints a table and writes JSON to ``bench/results/fuzz.json`` (``--out``). Exit status 1 when the run
crashed, printed a traceback, or a file is neither indexed nor reported as skipped.
"""

from __future__ import annotations

import argparse
import codecs
import datetime as dt
import gzip
import io
import json
import os
import platform
import random
import resource
import shutil
import socket
import string
import subprocess
import sys
import tempfile
import time
import zipfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "examples" / "corpus"
MB = 1 << 20


@dataclass
class Case:
    path: str  # relative, posix, as the index stores it
    kind: str  # what the file is
    expect: str  # "indexed", "skipped", "any" (either is fine, no crash), "ignored" (hidden: not even reported)
    marker: str | None = None  # a word only this file holds, checked in the index when it is indexed


@dataclass
class Outcome:
    case: Case
    result: str  # "indexed", "skipped", "absent"
    reason: str = ""
    ok: bool = True
    note: str = ""


@dataclass
class Corpus:
    folder: Path
    outside: Path  # files the links point to, outside the corpus
    cases: list[Case] = field(default_factory=list)


def _gzip_stream(path: Path, block: bytes, total: int) -> None:
    """Write ``total`` bytes of repeated ``block`` gzipped, without holding them in memory."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(path, "wb", compresslevel=9) as out:
        written = 0
        while written < total:
            piece = block[: total - written]
            out.write(piece)
            written += len(piece)


def _zip_bomb_docx(path: Path, total: int) -> None:
    """A DOCX whose word/document.xml inflates to ``total`` bytes (declared honestly in the zip)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", '<?xml version="1.0"?><Types/>')
        with archive.open("word/document.xml", "w", force_zip64=True) as member:
            block = b"<w:p>" + b"A" * (MB - 5)
            written = 0
            while written < total:
                member.write(block)
                written += len(block)


def _flate_bomb_pdf(total: int) -> bytes:
    """A one-page PDF whose content stream inflates to ``total`` bytes of spaces."""
    import zlib

    compressor = zlib.compressobj(9)
    chunk = b" " * MB
    stream = b"".join(compressor.compress(chunk) for _ in range(total // MB)) + compressor.flush()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R >>",
        b"<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(stream) + stream + b"\nendstream",
    ]
    out = io.BytesIO()
    out.write(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(out.tell())
        out.write(b"%d 0 obj\n" % number + body + b"\nendobj\n")
    xref = out.tell()
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1))
    for offset in offsets:
        out.write(b"%010d 00000 n \n" % offset)
    out.write(b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref))
    return out.getvalue()


def make_corpus(dest: Path, small: bool = False, seed: int = 0) -> Corpus:
    """Write the hostile corpus under ``dest/corpus`` (and link targets under ``dest/outside``).

    ``small`` keeps every kind of file but shrinks the big ones (bombs of 64 MB, one-liners of 3 MB) so the
    run takes seconds; index it with ``--max-file-mb 1`` so they still cross the cap.
    """
    rnd = random.Random(seed)
    folder = dest / "corpus"
    outside = dest / "outside"
    folder.mkdir(parents=True)
    outside.mkdir(parents=True)
    corpus = Corpus(folder, outside)
    bomb = 64 * MB if small else 1 << 30
    huge = 3 * MB if small else 50 * MB  # over the cap (1 MB for --small, 20 MB by default)
    under = 16 * 1024 if small else MB  # separator-free, under the cap: must be indexed, and fast
    many = 200 if small else 10_000  # headings, tab-separated words, CJK characters, entities: each a few hundred chunks

    def add(rel: str, data: bytes | str | None, kind: str, expect: str, marker: str | None = None) -> Path:
        path = folder / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if data is not None:
            path.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
        corpus.cases.append(Case(rel, kind, expect, marker))
        return path

    prose = "The {w} walked along the river bank and counted the boats that passed. "

    def text(marker: str, n: int = 20) -> str:
        return " ".join(prose.format(w=marker if i == 3 else "heron") for i in range(n))

    # -- control files: ordinary, must be indexed
    add("control/plain.txt", text("controlplainword"), "ordinary text", "indexed", "controlplainword")
    shutil.copy(CORPUS / "history" / "black_death.pdf", folder / "control" / "real.pdf")
    corpus.cases.append(Case("control/real.pdf", "ordinary PDF", "indexed", "plague"))
    shutil.copy(CORPUS / "geography" / "amazon_rainforest.docx", folder / "control" / "real.docx")
    corpus.cases.append(Case("control/real.docx", "ordinary DOCX", "indexed", "rainforest"))
    pdf = (CORPUS / "history" / "black_death.pdf").read_bytes()
    docx = (CORPUS / "geography" / "amazon_rainforest.docx").read_bytes()
    html_page = (CORPUS / "science" / "oxygen.html").read_bytes()

    # -- compression: bombs, corrupt, truncated, nested, compressed containers
    _gzip_stream(folder / "gz/bomb_zeros.txt.gz", b"\0" * MB, bomb)
    corpus.cases.append(Case("gz/bomb_zeros.txt.gz", f"gzip bomb: {bomb // MB} MB of zeros", "skipped"))
    _gzip_stream(folder / "gz/bomb_text.md.gz", b"ha " * (MB // 3), bomb)
    corpus.cases.append(Case("gz/bomb_text.md.gz", f"gzip bomb: {bomb // MB} MB of text", "skipped"))
    _gzip_stream(folder / "gz/bomb.pdf.gz", b"\0" * MB, bomb)
    corpus.cases.append(Case("gz/bomb.pdf.gz", "gzip bomb named .pdf.gz", "skipped"))
    good_gz = gzip.compress(text("gzippedmarker").encode())
    add("gz/good.txt.gz", good_gz, "ordinary .txt.gz", "indexed", "gzippedmarker")
    add("gz/truncated.txt.gz", good_gz[: len(good_gz) // 2], "truncated gzip", "skipped")
    add("gz/corrupt.txt.gz", good_gz[:12] + bytes(rnd.randrange(256) for _ in range(200)), "corrupt gzip", "skipped")
    add("gz/not_gzip.md.gz", "# plain text under a .gz name\n", "plain text named .gz", "skipped")
    add("gz/empty.txt.gz", gzip.compress(b""), "gzip of nothing", "skipped")
    add("gz/nested.txt.gz", gzip.compress(gzip.compress(b"nested " * 1000)), "gzip inside gzip", "skipped")
    add(
        "gz/multimember.txt.gz",
        gzip.compress(b"first member. ") + gzip.compress(b"multimembermarker second."),
        "two gzip members",
        "indexed",
        "multimembermarker",
    )
    add("gz/trailing_garbage.txt.gz", good_gz + b"garbage after the stream", "gzip with trailing garbage", "any")
    add("gz/paper.pdf.gz", gzip.compress(pdf), "ordinary .pdf.gz", "indexed", "plague")
    add("gz/doc.docx.gz", gzip.compress(docx), "ordinary .docx.gz", "indexed", "rainforest")
    add("gz/page.html.gz", gzip.compress(html_page), "ordinary .html.gz", "indexed", "oxygen")

    # -- size: one-liners and separator-free runs
    words = [("".join(rnd.choices(string.ascii_lowercase, k=rnd.randint(2, 9)))) for _ in range(3000)]
    one_line = " ".join(rnd.choice(words) for _ in range(huge // 6))
    add("big/oneline_words.txt", one_line[:huge], f"{huge // MB} MB on one line", "skipped")
    add("big/oneline_nosep.txt", "x" * huge, f"{huge // MB} MB without a separator", "skipped")
    add(
        "big/under_cap_nosep.txt",
        "nosepmarker" + "".join(rnd.choices(string.ascii_letters + "+/", k=under)),
        f"{under / MB:g} MB of base64-like text",
        "indexed",
        "nosepmarker",
    )
    add(
        "big/cjk_nospace.txt",
        "".join(chr(rnd.randint(0x4E00, 0x9FA5)) for _ in range(3 * many)),
        "CJK text without spaces",
        "indexed",
    )
    add(
        "big/long_heading.md",
        "# " + "h" * under + "\n\nbody longheadingmarker\n",
        f"markdown heading of {under // 1024} k chars",
        "indexed",
        "longheadingmarker",
    )
    add("big/many_headings.md", "".join(f"# h{i}\nx\n" for i in range(many)), f"{many} markdown headings", "indexed")
    add(
        "big/newlines.txt",
        "\n" * 200_000 + "lonelynewlinemarker" + "\n" * 200_000,
        "one word among 400k newlines",
        "indexed",
        "lonelynewlinemarker",
    )
    add(
        "big/tabs_only_separators.txt",
        "\t".join(rnd.choice(words) for _ in range(5 * many)),
        "words separated by tabs only",
        "indexed",
    )

    # -- binary and junk under text suffixes
    add("junk/nul.txt", b"\0" * MB, "1 MB of NUL bytes", "skipped")
    add("junk/nul_then_text.txt", b"\0" * 10 + b"hello world " * 100, "NULs then text", "skipped")
    for suffix in (".txt", ".md", ".html", ".pdf", ".docx", ".csv", ".rst", ".log"):
        add(f"junk/random{suffix}", bytes(rnd.randrange(256) for _ in range(64 * 1024)), f"random bytes as {suffix}", "any")
    add("junk/random_nonul.txt", bytes(rnd.randrange(1, 256) for _ in range(16 * 1024)), "random bytes without NUL", "any")
    add("junk/elf.txt", (Path(sys.executable).resolve().read_bytes())[:65536], "an executable named .txt", "skipped")
    add(
        "junk/control_chars.txt",
        "ctrlmarker \x1b[31mred\x1b[0m \x07bell\x08 " * 50,
        "ANSI escapes and control chars",
        "indexed",
        "ctrlmarker",
    )

    # -- encodings
    body = text("encodingmarker")
    add(
        "enc/utf16le_bom.txt",
        codecs.BOM_UTF16_LE + body.replace("encodingmarker", "utfsixteenlebom").encode("utf-16-le"),
        "UTF-16LE with BOM",
        "indexed",
        "utfsixteenlebom",
    )
    add(
        "enc/utf16be_bom.txt",
        codecs.BOM_UTF16_BE + body.replace("encodingmarker", "utfsixteenbebom").encode("utf-16-be"),
        "UTF-16BE with BOM",
        "indexed",
        "utfsixteenbebom",
    )
    add(
        "enc/utf16le_nobom.txt",
        body.replace("encodingmarker", "utfsixteenlenobom").encode("utf-16-le"),
        "UTF-16LE without BOM",
        "indexed",
        "utfsixteenlenobom",
    )
    add(
        "enc/utf16be_nobom.md",
        body.replace("encodingmarker", "utfsixteenbenobom").encode("utf-16-be"),
        "UTF-16BE without BOM",
        "indexed",
        "utfsixteenbenobom",
    )
    add(
        "enc/utf32_bom.txt",
        body.replace("encodingmarker", "utfthirtytwo").encode("utf-32"),
        "UTF-32 with BOM",
        "indexed",
        "utfthirtytwo",
    )
    add(
        "enc/utf16_odd_length.txt",
        codecs.BOM_UTF16_LE + "oddlength".encode("utf-16-le") + b"\x00",
        "UTF-16 with an odd byte",
        "any",
    )
    add(
        "enc/latin1.txt",
        ("Café crème brûlée, señor, über " * 30 + " latinonemarker").encode("latin-1"),
        "latin-1",
        "indexed",
        "latinonemarker",
    )
    add(
        "enc/cp1252.txt",
        ("“Smart quotes” – en dash — em dash € " * 30 + " windowsmarker").encode("cp1252"),
        "cp1252",
        "indexed",
        "windowsmarker",
    )
    add("enc/shift_jis.txt", ("日本語のテキストです。" * 50).encode("shift_jis"), "Shift-JIS", "indexed")
    add(
        "enc/mixed.txt",
        ("utf8 part é " * 40).encode() + ("latin part é " * 40).encode("latin-1") + b" mixedmarker",
        "UTF-8 and latin-1 mixed",
        "indexed",
        "mixedmarker",
    )
    add("enc/bom_only.txt", codecs.BOM_UTF8, "a UTF-8 BOM and nothing else", "skipped")
    add("enc/crlf.txt", "crlfmarker line one\r\nline two\r\n" * 20, "CRLF line ends", "indexed", "crlfmarker")
    add("enc/cr_only.md", "# Old Mac\rcronlymarker line\rline two\r" * 20, "CR-only line ends", "indexed", "cronlymarker")

    # -- HTML
    add(
        "html/deep_nesting.html",
        "<html><body>" + "<div>" * 50_000 + "deepmarker" + "</div>" * 50_000 + "</body></html>",
        "50k nested divs",
        "any",
    )
    paragraphs = "".join(f"<p>para {i} manytagsmarker</p>" for i in range(100_000))
    add("html/many_tags.html", "<html><body>" + paragraphs + "</body></html>", "100k tags", "any")
    add(
        "html/unclosed.html",
        "<html><body><p>unclosedmarker text <b>bold <i>italic " * 200,
        "unclosed tags",
        "indexed",
        "unclosedmarker",
    )
    add("html/script_only.html", "<html><script>" + "var x = 1;" * 1000 + "</script></html>", "script, no text", "skipped")
    add(
        "html/huge_attribute.html",
        '<html><body><p title="' + "a" * 500_000 + '">attrmarker here</p></body></html>',
        "a 500 kB attribute",
        "any",
    )
    add("html/[html-clean] brackets.html", "", "empty page whose name holds rich markup", "skipped")
    add(
        "html/xml_decl_lies.xhtml",
        '<?xml version="1.0" encoding="utf-16"?><html><body><p>xmldeclmarker</p></body></html>',
        "XML declaration with the wrong encoding",
        "any",
    )
    add("html/entity_flood.html", "<p>" + "&amp;" * (10 * many) + " entitymarker</p>", f"{10 * many} entities", "any")

    # -- PDF and DOCX: truncated, corrupt, bombs
    add("pdf/truncated.pdf", pdf[: len(pdf) // 2], "PDF cut in half", "any")
    add("pdf/header_only.pdf", b"%PDF-1.7\n", "PDF header only", "skipped")
    flipped = bytearray(pdf)
    for _ in range(200):
        flipped[rnd.randrange(len(flipped))] = rnd.randrange(256)
    add("pdf/bitflips.pdf", bytes(flipped), "PDF with 200 flipped bytes", "any")
    add("pdf/flate_bomb.pdf", _flate_bomb_pdf(16 * MB if small else 200 * MB), "PDF whose content stream inflates hugely", "any")
    add("pdf/text_named.pdf", "not a pdf at all", "text named .pdf", "skipped")
    add("docx/truncated.docx", docx[: len(docx) // 2], "DOCX cut in half", "skipped")
    add("docx/not_zip.docx", "plain text", "text named .docx", "skipped")
    add("docx/empty_zip.docx", _empty_zip(), "an empty zip named .docx", "skipped")
    _zip_bomb_docx(folder / "docx/zip_bomb.docx", bomb)
    corpus.cases.append(Case("docx/zip_bomb.docx", f"DOCX that unzips to {bomb // MB} MB", "skipped"))
    add("docx/bomb.docx.gz", gzip.compress((folder / "docx/zip_bomb.docx").read_bytes()), "zip-bomb DOCX, gzipped", "skipped")

    # -- empty and blank
    for suffix in (".txt", ".md", ".html", ".pdf", ".docx", ".csv"):
        add(f"empty/empty{suffix}", b"", f"empty {suffix}", "skipped")
    add("empty/spaces.txt", " " * 10_000, "only spaces", "skipped")
    add("empty/whitespace.md", " \n\t\n\r\n" * 1000, "only whitespace", "skipped")
    add("empty/nbsp.txt", "\u00a0\u2003\u3000" * 100, "only Unicode spaces", "any")

    # -- names
    add("names/new\nline.txt", text("newlinenamemarker"), "newline in the name", "indexed", "newlinenamemarker")
    add("names/tab\tname.txt", text("tabnamemarker"), "tab in the name", "indexed", "tabnamemarker")
    add("names/[bold]markup[/bold].md", text("markupnamemarker"), "rich markup in the name", "indexed", "markupnamemarker")
    add("names/\x1b[31mescape.txt", text("escapenamemarker"), "ANSI escape in the name", "indexed", "escapenamemarker")
    add("names/-rf --help.txt", text("dashnamemarker"), "leading dashes", "indexed", "dashnamemarker")
    add("names/emoji 🎉 ünïcödé.txt", text("emojinamemarker"), "emoji and accents", "indexed", "emojinamemarker")
    add("names/" + "l" * 240 + ".txt", text("longnamemarker"), "a 244-byte name", "indexed", "longnamemarker")
    add("names/UPPER.TXT", text("uppersuffixmarker"), "upper-case suffix", "indexed", "uppersuffixmarker")
    add("names/.hidden.txt", text("hiddenmarker"), "hidden file", "ignored")
    try:
        bad = os.fsencode(str(folder / "names")) + b"/latin1-\xe9t\xe9.txt"
        with open(bad, "wb") as handle:
            handle.write(text("badnamemarker").encode())
        corpus.cases.append(Case("names/latin1-\\xe9t\\xe9.txt", "file name not valid UTF-8", "skipped"))
    except OSError:
        pass

    # -- links and special files
    secret = outside / "secret.txt"
    secret.write_text("outsidesecretmarker " * 20)
    (outside / "dir").mkdir()
    (outside / "dir" / "inner.txt").write_text("outsidedirmarker " * 20)
    links = folder / "links"
    links.mkdir()
    for rel, target, kind, expect in [
        ("links/passwd.txt", "/etc/passwd", "link to /etc/passwd", "skipped"),
        ("links/secret.txt", str(secret), "link to a file outside", "skipped"),
        ("links/relative_secret.txt", os.path.relpath(secret, links), "relative link outside", "skipped"),
        ("links/outside_dir", str(outside / "dir"), "link to a folder outside", "skipped"),
        ("links/inside.txt", "../control/plain.txt", "link to a file inside", "indexed"),
        ("links/inside_dir", "../enc", "link to a folder inside", "ignored"),
        ("links/up", "..", "link to the folder holding it", "skipped"),
        ("links/broken.txt", "does-not-exist.txt", "broken link", "skipped"),
        ("links/self_loop.txt", "self_loop.txt", "link to itself", "skipped"),
        ("links/loop_a.md", "loop_b.md", "two links in a loop", "skipped"),
        ("links/loop_b.md", "loop_a.md", "two links in a loop", "skipped"),
        ("links/dev_zero.txt", "/dev/zero", "link to /dev/zero", "skipped"),
    ]:
        os.symlink(target, folder / rel)
        corpus.cases.append(Case(rel, kind, expect))
    (folder / "special").mkdir()
    os.mkfifo(folder / "special/fifo.txt")
    corpus.cases.append(Case("special/fifo.txt", "a FIFO (opening it blocks)", "skipped"))
    os.mkfifo(folder / "special/fifo_no_suffix")
    corpus.cases.append(Case("special/fifo_no_suffix", "a FIFO without a suffix", "skipped"))
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.bind(str(folder / "special/socket.md"))
        corpus.cases.append(Case("special/socket.md", "a Unix socket", "skipped"))
    except OSError:
        pass
    finally:
        sock.close()
    return corpus


def _empty_zip() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w"):
        pass
    return out.getvalue()


def _limit_memory(max_bytes: int):
    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (max_bytes, max_bytes))

    return apply


def run_index(folder: Path, index: Path, *args: str, mem_gib: float = 8.0, timeout: float = 900) -> dict:
    """``python -m sixfold index FOLDER --index INDEX --json ARGS`` under an address-space cap; its report and cost."""
    env = dict(
        os.environ, HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false", OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "1")
    )
    env.pop("SIXFOLD_DEBUG", None)
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    started = time.perf_counter()
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "sixfold", "index", str(folder), "--index", str(index), "--json", *args],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
            preexec_fn=_limit_memory(int(mem_gib * (1 << 30))),
        )
        rc, stdout, stderr, timed_out = proc.returncode, proc.stdout, proc.stderr, False
    except subprocess.TimeoutExpired as exc:
        rc, timed_out = None, True
        stdout = exc.stdout.decode() if isinstance(exc.stdout, bytes) else exc.stdout or ""
        stderr = exc.stderr.decode() if isinstance(exc.stderr, bytes) else exc.stderr or ""
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # KiB on Linux; the largest child so far
    try:
        report = json.loads(stdout) if rc == 0 else None
    except json.JSONDecodeError:
        report = None
    return {
        "rc": rc,
        "timed_out": timed_out,
        "seconds": round(seconds, 1),
        "peak_rss_mb": round(peak / 1024, 1),
        "peak_rss_is_this_run": peak > before,
        "report": report,
        "stderr": stderr,
    }


def indexed_files(index: Path) -> dict[str, str]:
    """path -> all its chunk text, from the index's DuckDB (read with the indexer's own store)."""
    sys.path.insert(0, str(ROOT))
    from sixfold.indexer.store import IndexStore

    snapshot = IndexStore(index).open()
    try:
        rows = snapshot.con.execute(
            "SELECT path, string_agg(text, ' ' ORDER BY chunk_index) FROM chunks GROUP BY path"
        ).fetchall()
    finally:
        snapshot.close()
    return dict(rows)


def evaluate(corpus: Corpus, run: dict, index: Path) -> tuple[list[Outcome], dict]:
    """Each file's fate (indexed / skipped with a reason / absent) against what it should have been."""
    report = run["report"] or {}
    skipped = {path: reason for path, reason in report.get("skipped", [])}
    texts = indexed_files(index) if run["rc"] == 0 and report else {}
    outcomes = []
    for case in corpus.cases:
        if case.path in texts:
            outcome = Outcome(case, "indexed")
            if case.marker and case.marker.lower() not in texts[case.path].lower():
                outcome.ok, outcome.note = False, f"indexed without its marker {case.marker!r} (decoded wrong?)"
        elif case.path in skipped:
            outcome = Outcome(case, "skipped", skipped[case.path])
            if not skipped[case.path].strip():
                outcome.ok, outcome.note = False, "skipped without a reason"
        else:
            outcome = Outcome(case, "absent")
        if case.expect == "ignored":
            outcome.ok = outcome.ok and outcome.result == "absent"
        elif case.expect == "any":
            outcome.ok = outcome.ok and outcome.result != "absent"
        else:
            outcome.ok = outcome.ok and outcome.result == case.expect
        if not outcome.ok and not outcome.note:
            outcome.note = f"expected {case.expect}"
        outcomes.append(outcome)
    everything = " ".join(texts.values())
    checks = {
        "exit_0": run["rc"] == 0,
        "no_traceback": "Traceback" not in run["stderr"],
        "passwd_not_indexed": "root:x:0:0" not in everything and "/bin/bash" not in everything,
        "outside_not_indexed": "outsidesecretmarker" not in everything and "outsidedirmarker" not in everything,
        "every_file_accounted_for": all(o.ok for o in outcomes),
    }
    return outcomes, checks


def summarize(run: dict, outcomes: list[Outcome]) -> dict:
    counts = {"tried": len(outcomes), "indexed": 0, "skipped": 0, "absent": 0}
    for outcome in outcomes:
        counts[outcome.result] += 1
    counts["crashed"] = 0 if run["rc"] == 0 and "Traceback" not in run["stderr"] else 1
    counts["unexpected"] = sum(not o.ok for o in outcomes)
    return counts


def _table(outcomes: list[Outcome]) -> str:
    lines = [f"{'file':<44} {'kind':<40} {'expect':<8} {'got':<8} reason / note"]
    for o in outcomes:
        name = o.case.path.encode("unicode_escape").decode()
        name = name if len(name) <= 44 else name[:20] + "…" + name[-23:]
        flag = "" if o.ok else "  <-- " + o.note
        lines.append(f"{name:<44} {o.case.kind[:40]:<40} {o.case.expect:<8} {o.result:<8} {o.reason[:70]}{flag}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--small", action="store_true", help="small bombs and one-liners (seconds; use with --max-file-mb 1)")
    ap.add_argument("--max-file-mb", type=float, help="passed to sixfold index (default: sixfold's own, 20)")
    ap.add_argument(
        "--mem-gib",
        type=float,
        default=8.0,
        help="address-space cap (RLIMIT_AS) of the indexing process (default 8: a normal run maps ~6.5 GiB, ~1.3 GB resident)",
    )
    ap.add_argument("--timeout", type=float, default=1800, help="seconds the indexing run may take")
    ap.add_argument("--keep", metavar="DIR", help="build the corpus and index here and keep them")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "fuzz.json"))
    args = ap.parse_args(argv)

    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="sixfold-fuzz-"))
    try:
        t0 = time.perf_counter()
        corpus = make_corpus(work, small=args.small)
        built = time.perf_counter() - t0
        size = sum(p.stat().st_size for p in corpus.folder.rglob("*") if p.is_file() and not p.is_symlink())
        print(
            f"corpus: {len(corpus.cases)} files, {size / MB:.0f} MB on disk, built in {built:.0f} s: {corpus.folder}", flush=True
        )
        extra = ["--max-file-mb", str(args.max_file_mb)] if args.max_file_mb else []
        run = run_index(corpus.folder, work / "index", *extra, mem_gib=args.mem_gib, timeout=args.timeout)
        outcomes, checks = evaluate(corpus, run, work / "index")
        counts = summarize(run, outcomes)
        print(_table(outcomes))
        print()
        cap = f"cap {args.mem_gib} GiB address space"
        print(f"sixfold index: exit {run['rc']}, {run['seconds']} s, peak RSS {run['peak_rss_mb']} MB ({cap})")
        print("  ".join(f"{k}={v}" for k, v in counts.items()))
        print("  ".join(f"{k}={'yes' if v else 'NO'}" for k, v in checks.items()))
        if run["rc"] != 0 or "Traceback" in run["stderr"]:
            print("stderr tail:\n" + run["stderr"][-3000:])
        result = {
            "date": dt.datetime.now().isoformat(timespec="seconds"),
            "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()},
            "command": "python bench/fuzz_corpus.py " + " ".join(argv if argv is not None else sys.argv[1:]),
            "small": args.small,
            "max_file_mb": args.max_file_mb,
            "mem_gib": args.mem_gib,
            "run": {k: v for k, v in run.items() if k not in ("report", "stderr")},
            "warnings": [line for line in run["stderr"].splitlines() if line.startswith("warning:")],
            "counts": counts,
            "checks": checks,
            "files": [asdict(o.case) | {"result": o.result, "reason": o.reason, "ok": o.ok, "note": o.note} for o in outcomes],
        }
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
        print(f"wrote {out}")
        return 0 if all(checks.values()) else 1
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
