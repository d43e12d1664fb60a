"""The lexical (BM25) index of the chunks, kept by tantivy beside the vectors.

Why tantivy: a real search engine library (Lucene's design, in Rust) with BM25 scoring, stemming
for many languages, and incremental add/delete by id, so re-indexing touches only changed files.
bm25s would need a full rebuild on every change, and DuckDB's fts extension must be rebuilt whole
too (and is fetched from the network at first use).
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Iterable
from pathlib import Path

import tantivy

from sixfold.core.errors import SixfoldError

ANALYZER = "sixfold_text"
STEMMER_LANGUAGES = {
    "ar": "arabic",
    "da": "danish",
    "nl": "dutch",
    "en": "english",
    "fi": "finnish",
    "fr": "french",
    "de": "german",
    "el": "greek",
    "hu": "hungarian",
    "it": "italian",
    "no": "norwegian",
    "pt": "portuguese",
    "ro": "romanian",
    "ru": "russian",
    "es": "spanish",
    "sv": "swedish",
    "ta": "tamil",
    "tr": "turkish",
}
# Tantivy query syntax characters; a user's query is plain words, so these are dropped.
_QUERY_SYNTAX = re.compile(r"[+\-!(){}\[\]^\"~*?:\\/<>=']|\b(AND|OR|NOT|IN)\b")


def _analyzer(language: str) -> tantivy.TextAnalyzer:
    builder = (
        tantivy.TextAnalyzerBuilder(tantivy.Tokenizer.simple())
        .filter(tantivy.Filter.remove_long(40))
        .filter(tantivy.Filter.lowercase())
        .filter(tantivy.Filter.ascii_fold())
    )
    if language != "none":
        if language not in STEMMER_LANGUAGES:
            choices = ", ".join(sorted(STEMMER_LANGUAGES)) + ", none"
            raise SixfoldError(f"no stemmer for language '{language}' (choose from {choices})")
        builder = builder.filter(tantivy.Filter.stemmer(STEMMER_LANGUAGES[language]))
    return builder.build()


def _schema() -> tantivy.Schema:
    builder = tantivy.SchemaBuilder()
    builder.add_integer_field("chunk_id", stored=True, indexed=True, fast=True)
    builder.add_text_field("text", stored=False, tokenizer_name=ANALYZER)
    return builder.build()


def document_text(text: str, heading: str | None) -> str:
    """What BM25 reads for a chunk: its text, led by its heading when the text does not already start with it."""
    return text if not heading or text.startswith(heading) else f"{heading}\n{text}"


def _read_only_failure(path: Path, exc: Exception) -> bool:
    """True when opening failed only because the folder cannot be written (tantivy's reader takes a lockfile)."""
    text = str(exc)
    return path.is_dir() and (
        not os.access(path, os.W_OK) or "Lockfile" in text and ("ReadOnly" in text or "PermissionDenied" in text)
    )


class LexicalIndex:
    """A tantivy index in ``path`` whose documents are (chunk_id, text); ``path=None`` keeps it in memory."""

    def __init__(self, path: Path | None, language: str, create: bool = False) -> None:
        self.path = path
        self._scratch: tempfile.TemporaryDirectory | None = None  # a private copy of a read-only index
        if path is None:
            self.index = tantivy.Index(_schema())
        else:
            if create:
                path.mkdir(parents=True, exist_ok=True)
            try:
                self.index = tantivy.Index(_schema(), path=str(path), reuse=not create)
            except (ValueError, OSError) as exc:
                if create or not _read_only_failure(path, exc):
                    raise SixfoldError(f"lexical index at {path} is corrupt or unreadable: {exc}") from None
                self.index = self._open_copy(path)
        self.index.register_tokenizer(ANALYZER, _analyzer(language))
        self._writer: tantivy.IndexWriter | None = None

    def _open_copy(self, path: Path) -> tantivy.Index:
        """Open a copy of ``path`` in a temporary folder: tantivy cannot open an index it may not write to."""
        self._scratch = tempfile.TemporaryDirectory(prefix="sixfold-lexical-")
        copy = Path(self._scratch.name) / "lexical"
        try:
            shutil.copytree(path, copy, ignore=shutil.ignore_patterns(".tantivy-*.lock"))
            return tantivy.Index(_schema(), path=str(copy), reuse=True)
        except (ValueError, OSError) as exc:
            self.close()
            raise SixfoldError(f"lexical index at {path} is corrupt or unreadable: {exc}") from None

    @classmethod
    def build(cls, path: Path | None, language: str, rows: Iterable[tuple[list[int], list[str]]]) -> LexicalIndex:
        """A new index (on disk, or in memory for ``path=None``) of ``rows``: batches of (chunk ids, texts)."""
        index = cls(path, language, create=True)
        for ids, texts in rows:
            index.add(ids, texts)
        index.commit()
        return index

    def close(self) -> None:
        """Drop the writer and any temporary copy."""
        self._writer = None
        if self._scratch is not None:
            self.index = None  # type: ignore[assignment]  # tantivy lets go of the copy's files; a closed index is not used
            self._scratch.cleanup()
            self._scratch = None

    def _w(self) -> tantivy.IndexWriter:
        if self._writer is None:
            self._writer = self.index.writer(heap_size=64_000_000, num_threads=1)
        return self._writer

    def add(self, ids: list[int], texts: list[str]) -> None:
        writer = self._w()
        for chunk_id, text in zip(ids, texts):
            writer.add_document(tantivy.Document(chunk_id=int(chunk_id), text=text))

    def delete(self, ids: list[int]) -> None:
        writer = self._w()
        for chunk_id in ids:
            writer.delete_documents_by_term("chunk_id", int(chunk_id))

    def commit(self) -> None:
        if self._writer is not None:
            self._writer.commit()
            self._writer.wait_merging_threads()
            self._writer = None
        self.index.reload()

    def search(self, query: str, k: int, allowed: list[int] | None = None) -> list[tuple[int, float]]:
        """BM25 top-k as (chunk_id, score); ``allowed`` restricts to those chunk ids."""
        cleaned = " ".join(_QUERY_SYNTAX.sub(" ", query).split())
        if not cleaned or k <= 0 or (allowed is not None and not allowed):
            return []
        parsed, _errors = self.index.parse_query_lenient(cleaned, ["text"])
        if allowed is not None:
            only = tantivy.Query.term_set_query(self.index.schema, "chunk_id", [int(i) for i in allowed])
            parsed = tantivy.Query.boolean_query(
                [(tantivy.Occur.Must, parsed), (tantivy.Occur.Must, tantivy.Query.const_score_query(only, 0.0))]
            )
        searcher = self.index.searcher()
        result = searcher.search(parsed, limit=k)
        out = []
        for score, address in result.hits:
            doc = searcher.doc(address)
            out.append((int(doc["chunk_id"][0]), float(score)))
        return out

    def count(self) -> int:
        return int(self.index.searcher().num_docs)
