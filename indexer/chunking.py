"""Token-sized, overlapping chunks with their place in the document (page, heading, offsets).

Sizes are counted in tokens of the embedder's own tokenizer, so a chunk never exceeds what the
model reads. The splitting itself is langchain-text-splitters' recursive splitter.
"""

from __future__ import annotations

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
        self._splitter = RecursiveCharacterTextSplitter.from_huggingface_tokenizer(
            tokenizer, chunk_size=chunk_tokens, chunk_overlap=overlap_tokens, add_start_index=True
        )

    def split(self, document: LoadedDocument) -> list[Chunk]:
        chunks: list[Chunk] = []
        base = 0
        for section in document.sections:
            for piece in self._splitter.create_documents([section.text]):
                start = base + int(piece.metadata.get("start_index", 0))
                chunks.append(
                    Chunk(piece.page_content, section.page, section.heading, start, start + len(piece.page_content))
                )
            base += len(section.text) + len(SECTION_SEPARATOR)
        return chunks
