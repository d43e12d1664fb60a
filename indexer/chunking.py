"""Token-sized, overlapping chunks with their place in the document (page, heading, offsets).

Sizes are counted in tokens of the embedder's own tokenizer, so a chunk never exceeds what the
model reads. The splitting itself is langchain-text-splitters' recursive splitter.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

from langchain_text_splitters import RecursiveCharacterTextSplitter

from indexer.errors import SixfoldError
from indexer.loaders import SECTION_SEPARATOR, LoadedDocument


@dataclass
class Chunk:
    text: str
    page: int | None
    heading: str | None
    start_char: int
    end_char: int


class Chunker:
    def __init__(self, tokenizer, chunk_tokens: int = 200, overlap_tokens: int = 40) -> None:
        if chunk_tokens < 16:
            raise SixfoldError(f"chunk size must be at least 16 tokens, got {chunk_tokens}")
        if not 0 <= overlap_tokens < chunk_tokens:
            raise SixfoldError(f"chunk overlap must be between 0 and the chunk size, got {overlap_tokens}")
        self.chunk_tokens = chunk_tokens
        self.overlap_tokens = overlap_tokens
        # Chunking runs in a loader thread while the model encodes: a private tokenizer copy keeps the
        # two from sharing the tokenizer's mutable truncation/padding state.
        tokenizer = copy.deepcopy(tokenizer)
        backend = getattr(tokenizer, "backend_tokenizer", None)
        if backend is not None:
            # Count with the Rust tokenizer directly: the same counts as ``tokenizer.tokenize`` (which
            # ``from_huggingface_tokenizer`` uses) at 2-3x the speed; chunking was the indexing bottleneck on a GPU.
            backend.no_truncation()
            backend.no_padding()
            self._splitter = RecursiveCharacterTextSplitter(
                chunk_size=chunk_tokens,
                chunk_overlap=overlap_tokens,
                length_function=lambda text: len(backend.encode(text, add_special_tokens=False).ids),
            )
        else:
            self._splitter = RecursiveCharacterTextSplitter.from_huggingface_tokenizer(
                tokenizer, chunk_size=chunk_tokens, chunk_overlap=overlap_tokens
            )

    def split(self, document: LoadedDocument) -> list[Chunk]:
        """Chunks in reading order; offsets index into ``document.text``.

        Offsets are found by searching each piece in its section after the previous piece's start
        (langchain's own start_index assumes the overlap is counted in characters, which it is not here).
        """
        chunks: list[Chunk] = []
        base = 0
        for section in document.sections:
            cursor = 0
            for piece in self._splitter.split_text(section.text):
                found = section.text.find(piece, cursor)
                if found < 0:
                    found = section.text.find(piece)
                start = max(found, 0)
                chunks.append(Chunk(piece, section.page, section.heading, base + start, base + start + len(piece)))
                cursor = start + 1
            base += len(section.text) + len(SECTION_SEPARATOR)
        return chunks
