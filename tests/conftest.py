"""Shared fixtures: the real model (loaded once), a shared read-only index of the bundled corpus, CLI helpers.

Everything here is the real thing: the packaged all-MiniLM-L6-v2 model, FAISS, tantivy and DuckDB files on
disk, and the CLI run either in-process (``sixfold.cli.main``) or as a real ``python -m sixfold`` subprocess.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

# Before anything imports torch / huggingface_hub.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
# On the small (2-core) CI boxes torch with 2 intra-op threads is ~3x slower than with 1; the suite is
# embedding-bound, so pin one thread (for this process and the CLI subprocesses, which inherit it).
os.environ.setdefault("OMP_NUM_THREADS", "1")

REPO = Path(__file__).resolve().parents[1]
CORPUS = REPO / "examples" / "corpus"
SQUAD_DEV = Path(os.environ.get("SIXFOLD_SQUAD_DEV", str(REPO.parent / "shared" / "data" / "squad_v1.1_dev" / "dev-v1.1.json")))
MODEL = "all-MiniLM-L6-v2"

# (query, file whose passage answers it) on the bundled corpus.
KNOWN_ANSWERS = [
    ("Who were the Normans descended from?", "history/normans.md"),
    ("How many people died in the Black Death plague pandemic in Europe?", "history/black_death.pdf"),
    ("What is the atomic number of oxygen?", "science/oxygen.html"),
    ("How much of the Amazon rainforest is in Brazil?", "geography/amazon_rainforest.docx"),
    ("What is packet switching and how does it group data into packets?", "technology/packet_switching.md"),
    ("how does a steam engine turn heat into work", "science/steam_engine.txt"),
]
MODES = ("hybrid", "dense", "bm25")


@pytest.fixture(scope="session")
def embedder():
    """The real packaged model, loaded once per session (load_embedder caches it for the Engine too)."""
    from sixfold.indexer.embedding import load_embedder

    return load_embedder(MODEL)


def copy_corpus(dest: Path) -> Path:
    shutil.copytree(CORPUS, dest)
    return dest


@pytest.fixture
def corpus_copy(tmp_path) -> Path:
    """A private, mutable copy of examples/corpus."""
    return copy_corpus(tmp_path / "corpus")


@dataclass
class SharedIndex:
    corpus: Path
    path: Path
    engine: object
    report: object


@pytest.fixture(scope="session")
def shared_index(tmp_path_factory, embedder) -> SharedIndex:
    """One index of the bundled corpus, built once; tests using it must not write to it."""
    from sixfold import Engine

    base = tmp_path_factory.mktemp("shared")
    corpus = copy_corpus(base / "corpus")
    path = base / "index"
    engine = Engine.open(path, model=MODEL)  # named: an English folder's default is the dual model (test_languages)
    report = engine.index(corpus)
    assert report.added == 6 and not report.skipped, report
    return SharedIndex(corpus=corpus, path=path, engine=engine, report=report)


def copy_index(src: Path, dest: Path) -> Path:
    shutil.copytree(src, dest, ignore=shutil.ignore_patterns(".lock"))
    return dest


@pytest.fixture(scope="session")
def _pristine_index(tmp_path_factory, embedder) -> tuple[Path, Path]:
    """An index of the corpus at a fixed session path, built once and never written after."""
    from sixfold import Engine

    base = tmp_path_factory.mktemp("incremental")
    corpus = copy_corpus(base / "corpus")
    index = base / "pristine-index"
    engine = Engine.open(index, model=MODEL)  # named, as shared_index: the tests compare with the `embedder` fixture
    assert engine.index(corpus).added == 6
    engine.close()
    return corpus, index


@dataclass
class Indexed:
    engine: object
    folder: Path
    index: Path


@pytest.fixture
def indexed(_pristine_index, tmp_path):
    """A freshly indexed, mutable corpus and its own index, without re-embedding for every test.

    The index records the corpus folder's absolute path, so the corpus is restored at the same (session)
    path for each test while the index is a private copy of the pristine one.
    """
    from sixfold import Engine

    corpus, pristine = _pristine_index
    shutil.rmtree(corpus)
    copy_corpus(corpus)
    index = copy_index(pristine, tmp_path / "index")
    engine = Engine.open(index)
    yield Indexed(engine, corpus, index)
    engine.close()


def current_generation(index_path: Path) -> Path:
    pointer = json.loads((index_path / "sixfold-index.json").read_text())
    return index_path / pointer["generation"]


# ---- CLI helpers ---------------------------------------------------------------------------------
def cli_env(**extra: str) -> dict:
    env = dict(os.environ)
    env["HF_HUB_OFFLINE"] = "1"
    env.pop("SIXFOLD_DEBUG", None)
    env.update(extra)
    return env


def run_cli(*args: str, timeout: float = 300, **env_extra: str) -> subprocess.CompletedProcess:
    """``python -m sixfold ARGS`` as a real subprocess."""
    return subprocess.run(
        [sys.executable, "-m", "sixfold", *map(str, args)],
        cwd=REPO,
        env=cli_env(**env_extra),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def assert_one_error_line(returncode: int, stderr: str, *fragments: str) -> str:
    """Non-zero exit, no traceback, and exactly one (non-blank) stderr line starting with 'error:'."""
    assert returncode != 0, f"expected failure, got exit 0; stderr={stderr!r}"
    assert "Traceback" not in stderr, stderr
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, f"expected one error line, got: {stderr!r}"
    line = lines[0]
    assert line.startswith("error:"), line
    assert "unexpected" not in line, f"an internal error leaked out as the user-facing message: {line}"
    for fragment in fragments:
        assert fragment.lower() in line.lower(), f"{fragment!r} not in {line!r}"
    return line


@pytest.fixture
def cli(capsys):
    """In-process CLI: ``rc, out, err = cli('search', 'q', '--index', p)``."""
    from sixfold.cli import main

    def call(*args: str) -> tuple[int, str, str]:
        capsys.readouterr()
        rc = main([str(a) for a in args])
        captured = capsys.readouterr()
        return rc, captured.out, captured.err

    return call
