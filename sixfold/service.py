"""The state behind the HTTP API: one Engine, its locks, a pool of embedder copies, the model list, fine-tunes.

Requests run in threads. The parts that share state (the index snapshot, DuckDB, FAISS, tantivy and the Engine's
own embedder) are used under ``index_lock``; the language model and the extractive reader under ``model_lock``;
texts are embedded outside both by copies of the embedder lent one request at a time. Each request carries a
``Deadline``: its waits and its model work end there.
"""

from __future__ import annotations

import os
import queue
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np

from sixfold.api_errors import ApiError
from sixfold.core.errors import SixfoldError
from sixfold.core.models import DEFAULT_GENERATOR, ResolvedModel
from sixfold.engine import Engine
from sixfold.indexer.embedding import Embedder, index_embedder_model
from sixfold.jobs import FileStore, FineTunes


class EmbedderPool:
    """Independent copies of the index's embedder, lent to one request at a time, so queries embed in parallel.

    Copies, not the process-wide cached embedder: a tokenizer must not be used by two threads at once (its
    truncation settings are mutable state), and the cached one stays with the Engine under the index lock.
    """

    def __init__(self, model: ResolvedModel, size: int) -> None:
        self._free: queue.Queue[Embedder] = queue.Queue()
        for _ in range(max(1, size)):
            self._free.put(Embedder(model))

    def warm(self) -> None:
        for embedder in list(self._free.queue):
            embedder.encode(["warm up"])

    @contextmanager
    def lend(self, deadline: Deadline | None = None) -> Iterator[Embedder | TimedEmbedder]:
        """A free copy; with ``deadline``, waited for until it and wrapped so encoding checks it between batches."""
        try:
            embedder = self._free.get(timeout=None if deadline is None else max(deadline.left(), 0.0))
        except queue.Empty:
            raise deadline.error("waiting for a free embedder") from None
        try:
            yield embedder if deadline is None else TimedEmbedder(embedder, deadline)
        finally:
            self._free.put(embedder)


class Deadline:
    """The time limit of one request (``--request-timeout``), counted from its arrival.

    Waits for a lock or an embedder end at it, embedding checks it between batches and generation at every token;
    past it the request is answered 504 (``request_timeout``): the server, not the request's sender, ran out of time.
    """

    def __init__(self, seconds: float, started: float | None = None) -> None:
        self.seconds = seconds
        self.at = (time.monotonic() if started is None else started) + seconds

    def left(self) -> float:
        return self.at - time.monotonic()

    def passed(self) -> bool:
        return self.left() <= 0

    def error(self, doing: str) -> ApiError:
        return ApiError(
            504,
            f"the request ran past the server's time limit of {self.seconds:g} s while {doing}; ask for less work "
            "(fewer or shorter texts, fewer tokens) or start the server with a larger --request-timeout",
            code="request_timeout",
            kind="server_error",
        )

    def check(self, doing: str) -> None:
        if self.passed():
            raise self.error(doing)

    @contextmanager
    def hold(self, lock: threading.Lock, doing: str) -> Iterator[None]:
        """``with lock``, but a wait past the deadline is the request's 504."""
        if not lock.acquire(timeout=max(self.left(), 0.0)):
            raise self.error(f"waiting for {doing}")
        try:
            yield
        finally:
            lock.release()


class TimedEmbedder:
    """An embedder that checks a request's deadline before each batch, so a big request stops within one batch."""

    def __init__(self, embedder: Embedder, deadline: Deadline, batch_size: int = 64) -> None:
        self.embedder, self.deadline, self.batch_size = embedder, deadline, batch_size

    def __getattr__(self, name: str):
        return getattr(self.embedder, name)

    def encode(self, texts: list[str], batch_size: int = 64) -> np.ndarray:
        parts = []
        for start in range(0, len(texts), self.batch_size):
            self.deadline.check("embedding texts")
            parts.append(self.embedder.encode(texts[start : start + self.batch_size], batch_size=batch_size))
        return np.concatenate(parts) if parts else self.embedder.encode(texts, batch_size=batch_size)


class Service:
    """The engine behind the API and the locks that make it safe to share between request threads."""

    def __init__(self, index_path: str | os.PathLike, generator: str = DEFAULT_GENERATOR, embedders: int = 2) -> None:
        self.engine = Engine.open(index_path)
        self.engine.store.read_pointer()  # no index: the server does not start
        self.embedders = EmbedderPool(index_embedder_model(self.engine.store.root), embedders)
        self.index_lock = threading.Lock()  # snapshot, DuckDB connection, the Engine's own embedder
        self.model_lock = threading.Lock()  # the language model / extractive reader
        self.generator = generator
        self.started = int(time.time())
        self.files = FileStore(self.engine.store.root)
        self.fine_tunes = FineTunes(self.engine.store.root, self.files)

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

    @property
    def embedder(self):
        return self.engine.embedder

    def warm(self) -> None:
        with self.index_lock:
            self.snapshot()
            self.embedder.encode(["warm up"])
        self.embedders.warm()

    # ---- models --------------------------------------------------------------------------
    def embedder_name(self) -> str:
        return self.engine.store.read_pointer()["model"]

    def models(self) -> list[dict]:
        from sixfold.tuner.versions import Registry

        def entry(model_id: str, role: str, **extra) -> dict:
            return {"id": model_id, "object": "model", "created": self.started, "owned_by": "sixfold", "role": role, **extra}

        items = [entry(self.embedder_name(), "embedder", active=True), entry(self.generator, "completion", active=True)]
        registry = Registry(self.engine.store.root).load()
        reader = registry.get("reader", {})
        # reader@base is "no extractive reader": none ships, so answers are generative until one is tuned
        items.append(entry("reader@base", "reader", active=reader.get("active") is None, ships=False))
        for number, info in sorted(reader.get("versions", {}).items(), key=lambda kv: int(kv[0])):
            created = info.get("created")
            stamp = int(time.mktime(time.strptime(created, "%Y-%m-%dT%H:%M:%S"))) if created else self.started
            items.append(
                {
                    **entry(f"reader@{number}", "reader", active=reader.get("active") == int(number)),
                    "created": stamp,
                    "eval": info.get("eval"),
                    "eval_before": info.get("eval_before"),
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
