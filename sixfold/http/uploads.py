"""Uploaded files of the HTTP server: the ``FileStore`` (``sixfold.http.jobs``) with deletion, content and OpenAI's
2021 document files, purposes ``search``, ``answers`` (JSONL rows ``{"text", "metadata"}``) and ``classifications``
(``{"text", "label", "metadata"}``), checked line by line on upload and read back parsed, each with an in-memory BM25
index (the indexer's tantivy ``LexicalIndex``) for the keyword pre-search that picks what is reranked."""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from sixfold.core.errors import SixfoldError
from sixfold.core.files import iter_jsonl
from sixfold.http.errors import ApiError
from sixfold.http.jobs import FileStore
from sixfold.http.schemas import MAX_TEXT
from sixfold.indexer.language import detect
from sixfold.indexer.lexical import LexicalIndex

PURPOSES = ("fine-tune", "search", "answers", "classifications")
DOCUMENT_PURPOSES = ("search", "answers", "classifications")
ROW_SHAPES = {
    "search": '{"text": ..., "metadata": ...}',
    "answers": '{"text": ..., "metadata": ...}',
    "classifications": '{"text": ..., "label": ..., "metadata": ...}',
}
CACHED_FILES = 8  # parsed document files kept in memory (with their BM25 index, once built)
PER_LABEL = 3  # examples of each label the keyword search missed, added so every label can be compared
_BATCH = 10_000  # rows per batch when building a file's BM25 index


@dataclass(frozen=True)
class Row:
    """One document (or labeled example) of an uploaded file; ``line`` is its 1-based line in the file."""

    text: str
    label: str | None
    metadata: Any
    line: int


def parse_rows(data: bytes, filename: str, purpose: str) -> list[Row]:
    """The rows of a ``search``/``answers``/``classifications`` upload; a 400 naming the first bad line otherwise."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise ApiError(
            400, f"{filename} is not UTF-8 text (JSONL expected: one {ROW_SHAPES[purpose]} per line)", param="file"
        ) from None
    rows: list[Row] = []
    try:
        for number, where, value in iter_jsonl(filename, text):
            rows.append(_row(value, where, number, purpose))
    except SixfoldError as exc:
        raise ApiError(400, f"{exc}; expected one {ROW_SHAPES[purpose]} per line", param="file") from None
    if not rows:
        raise ApiError(400, f"{filename} has no rows", param="file")
    if purpose == "classifications" and len({r.label for r in rows}) < 2:
        raise ApiError(400, f"{filename} has examples of one label only; classification needs at least two", param="file")
    return rows


def _row(value: object, where: str, number: int, purpose: str) -> Row:
    if not isinstance(value, dict):
        raise SixfoldError(f"{where}: not a JSON object")
    text = value.get("text")
    if not isinstance(text, str) or not text.strip():
        raise SixfoldError(f"{where}: 'text' must be a non-empty string")
    if len(text) > MAX_TEXT:
        raise SixfoldError(f"{where}: 'text' has {len(text)} characters, more than {MAX_TEXT}")
    label = None
    if purpose == "classifications":
        label = value.get("label")
        if not isinstance(label, str) or not label.strip():
            raise SixfoldError(f"{where}: 'label' must be a non-empty string")
        label = label.strip()
    return Row(text.strip(), label, value.get("metadata"), number)


@dataclass
class DocumentFile:
    """A parsed document file and, built on first need, its BM25 index (row positions are its document ids)."""

    meta: dict
    rows: list[Row]
    _lexical: LexicalIndex | None = None
    _languages: list[str] = field(default_factory=list)  # the rows' languages, once the BM25 index is built
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def id(self) -> str:
        return self.meta["id"]

    def _bm25(self, language: str) -> LexicalIndex:
        """The file's BM25 index; each row analysed in its own detected language (or the index's fixed one)."""
        with self._lock:
            if self._lexical is None:
                texts = [r.text for r in self.rows]
                languages: list[str | None]
                if language == "auto":
                    languages = [detect(text).language for text in texts]
                else:
                    languages = [language] * len(texts)
                batches = (
                    (
                        list(range(start, min(start + _BATCH, len(texts)))),
                        texts[start : start + _BATCH],
                        languages[start : start + _BATCH],
                    )
                    for start in range(0, len(texts), _BATCH)
                )
                self._lexical = LexicalIndex.build(None, language, batches, per_language=True)
                self._languages = sorted({lang for lang in languages if lang})
            return self._lexical

    def candidates(self, query: str, n: int, language: str, allowed: list[int] | None = None) -> list[int]:
        """Up to ``n`` rows (of ``allowed``, default all) for ``query``: all of them when they are ``n`` or fewer, else
        the ``n`` best by BM25 (OpenAI's keyword pre-search: a row sharing no word with the query is not picked)."""
        pool = list(range(len(self.rows))) if allowed is None else allowed
        if len(pool) <= n:
            return pool
        bm25 = self._bm25(language)
        return [i for i, _score in bm25.search(query, n, None if allowed is None else pool, languages=self._languages)]

    def example_candidates(self, query: str, n: int, language: str, labels: list[str] | None) -> list[int]:
        """The labeled examples a classification compares: ``candidates`` among the rows of ``labels`` (default every
        label), plus up to ``PER_LABEL`` best matches (else the first rows) of each label that search did not pick."""
        wanted = list(dict.fromkeys(labels)) if labels else sorted({r.label for r in self.rows if r.label is not None})
        by_label: dict[str, list[int]] = {label: [] for label in wanted}
        for i, row in enumerate(self.rows):
            if row.label in by_label:
                by_label[row.label].append(i)
        missing = [label for label, rows in by_label.items() if not rows]
        if missing:
            raise ApiError(400, f"label '{missing[0]}' has no examples in file {self.id}", param="labels")
        allowed = sorted(i for rows in by_label.values() for i in rows)
        picked = self.candidates(query, n, language, None if labels is None else allowed)
        seen = {self.rows[i].label for i in picked}
        for label in wanted:
            if label not in seen:
                best = self.candidates(query, PER_LABEL, language, by_label[label]) or by_label[label][:PER_LABEL]
                picked.extend(best)
        return picked


class UploadedFiles(FileStore):
    """The server's uploads: training files (``fine-tune``) and document files, stored by id in the index folder."""

    def __init__(self, index_root) -> None:
        super().__init__(index_root)
        self._parsed: OrderedDict[str, DocumentFile] = OrderedDict()
        self._lock = threading.Lock()

    def add(self, data: bytes, filename: str, purpose: str) -> dict:
        """Store an upload; a document file is checked row by row first (a 400 naming the line)."""
        if purpose not in PURPOSES:
            raise ApiError(400, f"purpose '{purpose}' is not supported (choose from {', '.join(PURPOSES)})", param="purpose")
        if not data.strip():
            raise ApiError(400, "the uploaded file is empty", param="file")
        if purpose in DOCUMENT_PURPOSES:
            rows = parse_rows(data, filename or "upload.jsonl", purpose)
            meta = super().add(data, filename, purpose)
            with self._lock:
                self._remember(DocumentFile(meta, rows))
            return meta
        try:
            data.decode("utf-8")
        except UnicodeDecodeError:
            raise ApiError(400, "the uploaded file is not UTF-8 text (JSONL or SQuAD JSON expected)", param="file") from None
        return super().add(data, filename, purpose)

    def meta(self, file_id: str) -> dict:
        """The file's record, or a 404 in OpenAI's shape."""
        try:
            return self.get(file_id)
        except KeyError:
            raise ApiError(404, f"no file '{file_id}'", param="file_id", code="not_found") from None

    def content(self, file_id: str) -> bytes:
        self.meta(file_id)
        return self.path(file_id).read_bytes()

    def delete(self, file_id: str) -> dict:
        self.meta(file_id)
        data, meta = self._paths(file_id)
        with self._lock:
            self._parsed.pop(file_id, None)
            meta.unlink(missing_ok=True)  # the record first: a file without it is not listed or read
            data.unlink(missing_ok=True)
        return {"id": file_id, "object": "file", "deleted": True}

    def documents(self, file_id: str, purpose: str, param: str = "file") -> DocumentFile:
        """The parsed rows of an uploaded ``purpose`` file: a 404 for no such file, a 400 for another purpose."""
        try:
            meta = self.get(file_id)
        except KeyError:
            raise ApiError(404, f"no file '{file_id}' (upload one with POST /v1/files)", param=param, code="not_found") from None
        if meta["purpose"] != purpose:
            raise ApiError(
                400,
                f"file {file_id} was uploaded with purpose '{meta['purpose']}'; this endpoint reads files of purpose "
                f"'{purpose}' (JSONL, one {ROW_SHAPES[purpose]} per line)",
                param=param,
            )
        with self._lock:
            found = self._parsed.get(file_id)
            if found is not None:
                self._parsed.move_to_end(file_id)
                return found
        try:
            data = self.path(file_id).read_bytes()
        except (KeyError, OSError):  # deleted meanwhile
            raise ApiError(404, f"no file '{file_id}'", param=param, code="not_found") from None
        parsed = DocumentFile(meta, parse_rows(data, meta["filename"], purpose))
        with self._lock:
            return self._remember(parsed)

    def _remember(self, parsed: DocumentFile) -> DocumentFile:
        """Keep ``parsed`` (call with ``_lock`` held), dropping the least recently used beyond ``CACHED_FILES``."""
        kept = self._parsed.setdefault(parsed.id, parsed)
        self._parsed.move_to_end(parsed.id)
        while len(self._parsed) > CACHED_FILES:
            self._parsed.popitem(last=False)
        return kept
