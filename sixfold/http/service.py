"""The state behind the HTTP API: one Engine, its locks, a pool of embedder copies, the model list, fine-tunes.

Requests run in threads. The parts that share state (the index snapshot, DuckDB, FAISS, tantivy and the Engine's
own embedder) are used under ``index_lock``; the language model and the extractive reader under ``model_lock``;
texts are embedded outside both by copies of the embedder lent one request at a time. Each request carries a
``Deadline``: its waits and its model work end there. Every method is one Engine call wrapped in that discipline.
"""

from __future__ import annotations

import os
import queue
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import Annotated, Any

import numpy as np
from fastapi import Depends, Request

from sixfold.core.errors import SixfoldError
from sixfold.core.models import ResolvedModel
from sixfold.engine import Engine, base_generator
from sixfold.http.errors import ApiError
from sixfold.http.jobs import FineTunes
from sixfold.http.limits import Deadline
from sixfold.http.uploads import DocumentFile, UploadedFiles
from sixfold.indexer.embedding import Embedder, index_embedder_model, open_embedder
from sixfold.reader.types import Answer, Completion, Label, LabeledExample, Passage
from sixfold.retriever.search import VECTOR_MODES
from sixfold.retriever.types import Hit

GROUNDED_MODEL = "sixfold-answers"  # /v1/chat/completions: answers from the index, with its sources (sixfold.http.chat)


class TimedEmbedder:
    """An embedder that checks a request's deadline before each batch, so a big request stops within one batch.

    It stands in for its ``Embedder`` wherever a ``TextEmbedder`` is taken (``Engine.embed``, ``rank_texts``,
    ``classify``); other attributes are the embedder's own."""

    def __init__(self, embedder: Embedder, deadline: Deadline, batch_size: int = 64) -> None:
        self.embedder, self.deadline, self.batch_size = embedder, deadline, batch_size

    @property
    def name(self) -> str:
        return self.embedder.name

    @property
    def dim(self) -> int:
        return self.embedder.dim

    def token_counts(self, texts: list[str]) -> list[int]:
        return self.embedder.token_counts(texts)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.embedder, name)

    def encode(self, texts: list[str], batch_size: int = 64) -> np.ndarray:
        parts = []
        for start in range(0, len(texts), self.batch_size):
            self.deadline.check("embedding texts")
            parts.append(self.embedder.encode(texts[start : start + self.batch_size], batch_size=batch_size))
        return np.concatenate(parts) if parts else self.embedder.encode(texts, batch_size=batch_size)


class EmbedderPool:
    """Independent copies of the index's embedder, lent to one request at a time, so queries embed in parallel.

    Copies, not the process-wide cached embedder: a tokenizer must not be used by two threads at once (its
    truncation settings are mutable state), and the cached one stays with the Engine under the index lock.
    """

    def __init__(self, model: ResolvedModel, size: int) -> None:
        self._free: queue.Queue[Embedder] = queue.Queue()
        for _ in range(max(1, size)):
            self._free.put(open_embedder(model))
        first = self._free.queue[0]
        self.name, self.dim = first.name, first.dim

    def warm(self) -> None:
        for embedder in list(self._free.queue):
            embedder.encode(["warm up"])

    @contextmanager
    def lend(self, deadline: Deadline | None = None) -> Iterator[Embedder | TimedEmbedder]:
        """A free copy; with ``deadline``, waited for until it and wrapped so encoding checks it between batches."""
        if deadline is None:
            embedder = self._free.get()  # waits as long as it takes
        else:
            try:
                embedder = self._free.get(timeout=max(deadline.left(), 0.0))
            except queue.Empty:
                raise deadline.error("waiting for a free embedder") from None
        try:
            yield embedder if deadline is None else TimedEmbedder(embedder, deadline)
        finally:
            self._free.put(embedder)


class Service:
    """The engine behind the API and the locks that make it safe to share between request threads."""

    def __init__(self, index_path: str | os.PathLike, generator: str | None = None, embedders: int = 2) -> None:
        """``generator``: the language model named at start (--generator, $SIXFOLD_GENERATOR); None: the index's
        active tuned generator, else the default LM, looked up at each request (a fine-tune may activate one)."""
        self.engine = Engine.open(index_path)
        self.engine.store.read_pointer()  # no index: the server does not start
        self._pool = EmbedderPool(index_embedder_model(self.engine.store.root), embedders)
        self._pool_size = embedders
        self._pool_lock = threading.Lock()
        self.index_lock = threading.Lock()  # snapshot, DuckDB connection, the Engine's own embedder
        self.model_lock = threading.Lock()  # the language model / extractive reader
        self.named_generator = generator
        self.started = int(time.time())
        self.files = UploadedFiles(self.engine.store.root)
        self._language: str | None = None  # the index's language: the stemmer of an uploaded file's BM25 index
        self.fine_tunes = FineTunes(self.engine, self.files)

    @property
    def embedders(self) -> EmbedderPool:
        """Copies of the index's embedder as the pointer names it now: a new pool once the index has been re-embedded
        with another model (``models use embedder`` in another process), so no query embeds with the old one."""
        try:
            model = self.engine.store.read_pointer()["model"]
        except SixfoldError:
            return self._pool  # a damaged pointer: the snapshot's own error says so where it matters
        if model != self._pool.name:
            with self._pool_lock:
                if model != self._pool.name:
                    self._pool = EmbedderPool(index_embedder_model(self.engine.store.root), self._pool_size)
        return self._pool

    # ---- shared state (call with index_lock held) ---------------------------------------
    def snapshot(self):
        """The newest whole generation, fully opened (a generation folder may be pruned after two more commits)."""
        for attempt in range(3):
            try:
                snap = self.engine.snapshot()
                snap.vectors, snap.lexical  # noqa: B018 - load both now, while the folder surely exists
                return snap
            except SixfoldError:
                if attempt == 2:
                    raise
                self.engine.close()
                time.sleep(0.05)

    def warm(self) -> None:
        with self.index_lock:
            self.snapshot()
            self.engine.embedder.encode(["warm up"])
        self.embedders.warm()

    # ---- the index -------------------------------------------------------------------------
    def status(self, deadline: Deadline) -> dict:
        with deadline.hold(self.index_lock, "the index"):
            self.snapshot()
            return self.engine.status().to_dict()

    def search(self, query: str, k: int, mode: str | None, deadline: Deadline) -> tuple[list[Hit], str]:
        """The index's top ``k`` and the generation they come from; the query is embedded outside the index lock."""
        with deadline.hold(self.index_lock, "the index"):
            mode = mode or self.engine.query_mode(query, self.snapshot())
        vector, model = self._embed_query(query, deadline) if mode in VECTOR_MODES and query.strip() else (None, None)
        with deadline.hold(self.index_lock, "the index"):
            snap = self.snapshot()
            if model != snap.settings.model:
                vector = None  # re-embedded with another model meanwhile: the Engine embeds with the snapshot's
            return self.engine.search(query, k, mode=mode, query_vector=vector, snapshot=snap), snap.folder.name

    def passages(self, question: str, k: int, deadline: Deadline) -> list[Passage]:
        """The passages of the index a reader gets for ``question``."""
        with deadline.hold(self.index_lock, "the index"):
            self.snapshot()
            return self.engine.passages(question, k)

    # ---- embedding with the pool (no index lock) ------------------------------------------
    def _embed_query(self, query: str, deadline: Deadline) -> tuple[np.ndarray, str]:
        """The query's vector and the name of the model that made it."""
        with self.embedders.lend(deadline) as embedder:
            return embedder.encode_queries([query.strip()])[0], embedder.name

    def embed(self, texts: list[str], deadline: Deadline) -> tuple[np.ndarray, int]:
        """The vectors of ``texts`` and how many tokens they held."""
        with self.embedders.lend(deadline) as embedder:
            return self.engine.embed(texts, embedder=embedder), sum(embedder.token_counts(texts))

    def rank_documents(self, query: str, documents: list[str], k: int, deadline: Deadline) -> list[Passage]:
        """The top ``k`` of a request's inline ``documents`` for ``query``, named ``documents[i]``."""
        sources = [(f"documents[{i}]", "") for i in range(len(documents))]
        with self.embedders.lend(deadline) as embedder:
            return self.engine.rank_texts(query, documents, k, sources=sources, embedder=embedder)

    def classify(
        self,
        query: str,
        examples: list[LabeledExample] | None,
        deadline: Deadline,
        *,
        cache: bool = False,
        labels: list[str] | None = None,
        classifier: str | None = None,
    ) -> Label:
        """``Engine.classify`` with a pooled embedder. ``cache``: keep the examples' vectors on disk (for a stored
        file's examples; not for a request's own)."""
        with self.embedders.lend(deadline) as embedder:
            found = self.engine.classify([query], examples, labels=labels, classifier=classifier, cache=cache, embedder=embedder)
        return found[0]

    # ---- uploaded document files (a keyword pre-search, then the Engine ranks or classifies) ------
    def language(self, deadline: Deadline) -> str:
        if self._language is None:
            with deadline.hold(self.index_lock, "the index"):
                self._language = self.snapshot().settings.language
        return self._language

    def rank_file(self, query: str, doc: DocumentFile, max_rerank: int, k: int, deadline: Deadline) -> list[Passage]:
        """The top ``k`` of the ``max_rerank`` rows of ``doc`` a keyword search picks for ``query``, reranked by the
        Engine (cosine, as inline documents); each Passage's ``id`` is the row's position in the file."""
        picked = doc.candidates(query, max_rerank, self.language(deadline))
        if not picked:
            return []
        rows = [doc.rows[i] for i in picked]
        sources = [(doc.meta["filename"], f"line {row.line}") for row in rows]
        with self.embedders.lend(deadline) as embedder:
            ranked = self.engine.rank_texts(query, [r.text for r in rows], k, sources=sources, embedder=embedder)
        return [replace(p, id=picked[p.id]) for p in ranked]

    def file_examples(
        self, query: str, doc: DocumentFile, labels: list[str] | None, max_examples: int, deadline: Deadline
    ) -> tuple[list[LabeledExample], bool]:
        """The labeled examples of ``doc`` a classification of ``query`` compares (``DocumentFile.example_candidates``),
        each with its row position as ``line``, and whether they are all the rows of those labels."""
        picked = doc.example_candidates(query, max_examples, self.language(deadline), labels)
        examples = [LabeledExample(doc.rows[i].text, doc.rows[i].label or "", line=i) for i in picked]
        pool = sum(1 for row in doc.rows if not labels or row.label in labels)
        return examples, len(picked) == pool  # no row left out: the same examples every time, worth caching

    def answer_prompt(self, question: str, passages: list[Passage], mode: str, deadline: Deadline) -> str | None:
        """The prompt the generative reader is given for ``passages``; None in extractive mode (no prompt)."""
        if mode != "generative" or not passages:
            return None
        from sixfold.reader.generative import build_prompt
        from sixfold.reader.llm import load_llm

        with deadline.hold(self.model_lock, "the language model"):
            return build_prompt(load_llm(self.engine.generator_model(self.generator)), question, passages)[0]

    # ---- the models (under model_lock) ------------------------------------------------------
    def answer(self, question: str, passages: list[Passage], mode: str, reader: str | None, deadline: Deadline) -> Answer:
        with deadline.hold(self.model_lock, "the reader model"):
            return self.engine.answer(question, passages, mode=mode, reader=reader, generator=self.generator)

    def completions(
        self,
        prompts: list[str],
        options: dict,
        deadline: Deadline,
        *,
        echo: bool = False,
        on_text: Callable[[int, str], None] | None = None,
        gone: Callable[[], bool] = lambda: False,
    ) -> Iterator[tuple[int, Completion]]:
        """Each prompt completed in turn, under the model lock. ``on_text(index, piece)`` gets the text as it comes
        (the prompt first when ``echo``); past the deadline (or once ``gone()``) generation stops at its next token
        and the request is a 504."""
        with deadline.hold(self.model_lock, "the language model"):
            for index, prompt in enumerate(prompts):
                doing = f"generating completion {index + 1} of {len(prompts)}"
                deadline.check(doing)
                if echo and on_text:
                    on_text(index, prompt)
                done = self.engine.complete(
                    prompt,
                    **options,
                    on_text=None if on_text is None else (lambda piece, index=index: on_text(index, piece)),
                    should_stop=lambda: gone() or deadline.passed(),
                )
                if done.finish_reason == "interrupted":
                    raise deadline.error(doing)
                yield index, done

    @property
    def generator(self) -> str:
        """The language model requests get when they name none: the one named at start, else the index's active
        tuned generator (``generator@N``), else the default LM."""
        if self.named_generator:
            return self.named_generator
        spec = self.engine.generator_model(None)
        return spec.name if isinstance(spec, ResolvedModel) else spec

    def language_model(self, name: str | None) -> str:
        """The model a completion or chat request runs on: the one named (checked against ``models`` already: the
        language model, ``generator@N`` or ``generator@base``), else the server's ``generator``."""
        return name or self.generator

    def embedder_name(self) -> str:
        return self.engine.store.read_pointer()["model"]

    def models(self) -> list[dict]:
        """The models this server answers with, in OpenAI's list shape (each with its sixfold ``role``)."""

        def entry(model_id: str, role: str, **extra) -> dict:
            return {"id": model_id, "object": "model", "created": self.started, "owned_by": "sixfold", "role": role, **extra}

        tuned = {m.role: m for m in self.engine.models()}
        generator = self.generator
        tuned_active = generator.startswith("generator@")  # then the untuned model stays listed, by name, inactive
        language_model = base_generator() if tuned_active else generator
        items = [entry(self.embedder_name(), "embedder", active=True)]
        items.append(entry(language_model, "completion", active=not tuned_active))
        items.append(entry(GROUNDED_MODEL, "grounded", active=True))
        items.append(entry("generator@base", "completion", active=not tuned_active, base=base_generator()))
        # reader@base is "no extractive reader": none ships, so answers are generative until one is tuned;
        # classifier@base is nearest-example classification with the index's embedder
        items.append(entry("reader@base", "reader", active=tuned["reader"].active is None, ships=False))
        items.append(entry("classifier@base", "classifier", active=tuned["classifier"].active is None))
        for role in ("reader", "classifier", "generator"):
            for version in tuned[role].versions:
                created = version.created
                stamp = int(time.mktime(time.strptime(created, "%Y-%m-%dT%H:%M:%S"))) if created else self.started
                items.append(
                    {
                        **entry(
                            f"{role}@{version.number}",
                            "completion" if role == "generator" else role,
                            active=f"{role}@{version.number}" == generator
                            if role == "generator"
                            else tuned[role].active == version.number,
                        ),
                        "created": stamp,
                        "eval": version.eval or None,
                        "eval_before": version.eval_before or None,
                    }
                )
        return items

    def check_model(self, name: str | None, roles: tuple[str, ...] | None = None, param: str = "model") -> str | None:
        """``name`` if it is one of this server's models (of one of ``roles``); else a 404 in OpenAI's shape."""
        if name is None:
            return None
        known = [m for m in self.models() if roles is None or m["role"] in roles]
        if name not in {m["id"] for m in known}:
            listing = ", ".join(m["id"] for m in known)
            raise ApiError(
                404,
                f"the model '{name}' does not exist on this server (available for this endpoint: {listing})",
                param=param,
                code="model_not_found",
            )
        return name


def request_service(request: Request) -> Service:
    return request.app.state.service


ServiceDep = Annotated[Service, Depends(request_service)]
