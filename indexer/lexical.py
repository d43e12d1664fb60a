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

ANALYZER = "sixfold_text"  # the one analyser of an index made before per-language fields (format "single")
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
OTHER = "other"  # the field of chunks in a language without a stemmer (or undetermined): the plain analyser
# Tantivy query syntax characters; a user's query is plain words, so these are dropped.
_QUERY_SYNTAX = re.compile(r"[+\-!(){}\[\]^\"~*?:\\/<>=']|\b(AND|OR|NOT|IN)\b")


def check_language(language: str) -> None:
    """Refuse a ``--language`` that no analyser exists for (``auto``: detect per document; ``none``: no stemming)."""
    if language not in ("auto", "none") and language not in STEMMER_LANGUAGES:
        choices = ", ".join(sorted(STEMMER_LANGUAGES)) + ", auto, none"
        raise SixfoldError(f"no stemmer for language '{language}' (choose from {choices})")


def _analyzer(language: str) -> tantivy.TextAnalyzer:
    """Lowercase, ASCII folding, a Snowball stemmer (none for ``none`` and ``other``).

    No stop words: on XQuAD-R they cost 0.008 nDCG@10 in English and in Spanish, removed at index or at query time
    (questions keep their function words, which BM25's IDF already weighs down); see docs/benchmarks.md."""
    builder = (
        tantivy.TextAnalyzerBuilder(tantivy.Tokenizer.simple())
        .filter(tantivy.Filter.remove_long(40))
        .filter(tantivy.Filter.lowercase())
        .filter(tantivy.Filter.ascii_fold())
    )
    if language not in ("none", OTHER):
        check_language(language)
        builder = builder.filter(tantivy.Filter.stemmer(STEMMER_LANGUAGES[language]))
    return builder.build()


def field_language(language: str | None) -> str:
    """The per-language field a chunk in ``language`` goes to: its stemmer's, or ``other``."""
    return language if language in STEMMER_LANGUAGES else OTHER


def _field(language: str) -> str:
    return f"text_{language}"


FIELD_LANGUAGES = (*STEMMER_LANGUAGES, OTHER)


def _schema(per_language: bool) -> tantivy.Schema:
    builder = tantivy.SchemaBuilder()
    builder.add_integer_field("chunk_id", stored=True, indexed=True, fast=True)
    if per_language:
        for language in FIELD_LANGUAGES:
            builder.add_text_field(_field(language), stored=False, tokenizer_name=f"sixfold_{language}")
    else:
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
    """A tantivy index in ``path`` whose documents are (chunk_id, text); ``path=None`` keeps it in memory.

    ``per_language`` (every index made since the multilingual release): one text field per stemmer language plus
    ``other``, each with its language's stemmer; a chunk's text goes to its language's field, and a
    query is analysed once per language the index holds (``search(languages=...)``), so a mixed folder is one index
    and each document is stemmed in its own language. Otherwise (older indexes): one field with ``language``'s
    stemmer and no stop words."""

    def __init__(self, path: Path | None, language: str, create: bool = False, per_language: bool = False) -> None:
        self.path = path
        self.per_language = per_language
        self.language = language
        self._scratch: tempfile.TemporaryDirectory | None = None  # a private copy of a read-only index
        schema = _schema(per_language)
        if path is None:
            self.index = tantivy.Index(schema)
        else:
            if create:
                path.mkdir(parents=True, exist_ok=True)
            try:
                self.index = tantivy.Index(schema, path=str(path), reuse=not create)
            except (ValueError, OSError) as exc:
                if create or not _read_only_failure(path, exc):
                    raise SixfoldError(f"lexical index at {path} is corrupt or unreadable: {exc}") from None
                self.index = self._open_copy(path, schema)
        if per_language:
            for field_lang in FIELD_LANGUAGES:
                self.index.register_tokenizer(f"sixfold_{field_lang}", _analyzer(field_lang))
        else:
            self.index.register_tokenizer(ANALYZER, _analyzer(language))
        self._writer: tantivy.IndexWriter | None = None

    def _open_copy(self, path: Path, schema: tantivy.Schema) -> tantivy.Index:
        """Open a copy of ``path`` in a temporary folder: tantivy cannot open an index it may not write to."""
        self._scratch = tempfile.TemporaryDirectory(prefix="sixfold-lexical-")
        copy = Path(self._scratch.name) / "lexical"
        try:
            shutil.copytree(path, copy, ignore=shutil.ignore_patterns(".tantivy-*.lock"))
            return tantivy.Index(schema, path=str(copy), reuse=True)
        except (ValueError, OSError) as exc:
            self.close()
            raise SixfoldError(f"lexical index at {path} is corrupt or unreadable: {exc}") from None

    @classmethod
    def build(
        cls,
        path: Path | None,
        language: str,
        rows: Iterable[tuple[list[int], list[str], list[str | None]]],
        per_language: bool = False,
    ) -> LexicalIndex:
        """A new index (on disk, or in memory for ``path=None``) of ``rows``: batches of (chunk ids, texts, their
        languages)."""
        index = cls(path, language, create=True, per_language=per_language)
        for ids, texts, languages in rows:
            index.add(ids, texts, languages)
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

    def add(self, ids: list[int], texts: list[str], languages: list[str | None] | None = None) -> None:
        """Add chunks; ``languages`` (per chunk) picks each one's field in a per-language index."""
        writer = self._w()
        if not self.per_language:
            for chunk_id, text in zip(ids, texts):
                writer.add_document(tantivy.Document(chunk_id=int(chunk_id), text=text))
            return
        langs = languages if languages is not None else [None] * len(ids)
        for chunk_id, text, lang in zip(ids, texts, langs):
            document = tantivy.Document(chunk_id=int(chunk_id))
            document.add_text(_field(field_language(lang)), text)
            writer.add_document(document)

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

    def search(
        self, query: str, k: int, allowed: list[int] | None = None, languages: list[str] | None = None
    ) -> list[tuple[int, float]]:
        """BM25 top-k as (chunk_id, score); ``allowed`` restricts to those chunk ids. In a per-language index the
        query is analysed in each of ``languages`` (the languages its chunks are in; default: every field)."""
        cleaned = " ".join(_QUERY_SYNTAX.sub(" ", query).split())
        if not cleaned or k <= 0 or (allowed is not None and not allowed):
            return []
        if self.per_language:
            wanted = {field_language(lang) for lang in languages} if languages else set(FIELD_LANGUAGES)
            fields = [_field(lang) for lang in FIELD_LANGUAGES if lang in wanted]
        else:
            fields = ["text"]
        parsed, _errors = self.index.parse_query_lenient(cleaned, fields)
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
