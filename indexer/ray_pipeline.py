"""Indexing and bulk embedding on a Ray cluster: ``sixfold index FOLDER --ray ADDRESS``, ``sixfold embed --ray``.

The driver (this process) walks the folder, diffs it against the stored hashes and applies renames and removals
exactly as a local run does (``pipeline.index_folder``); only the files to (re)index go to the cluster, through one
Ray Data pipeline::

    from_items(jobs) -> map_batches(load, detect, chunk: CPU tasks) -> map_batches(embed: an actor pool, one model
    per actor, a GPU each where the cluster has GPUs) -> streamed back to the driver in file order

The driver's writer adds each file with the vectors computed on the cluster (nothing is embedded twice) and commits
every ``commit_every`` chunks, so the index is the one a local run builds: same chunk ids, DuckDB rows, FAISS and
BM25 contents; incremental; atomic (a failed run leaves the last commit).

Files are read by the workers at the path the driver sees them at: every node must see the indexed folder at the
same path (one machine, a local head + worker cluster, or a shared filesystem such as NFS). A worker that cannot see
a file the driver sees stops the run with one error line saying so. Every node runs the same Python environment
(sixfold installed); a tuned embedder (``embedder@N``) is read from the index folder, which must be shared too.

Ray is optional (``pip install 'sixfold[ray]'``): it is imported here only, and only when a run asks for it.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import pickle
import queue
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from sixfold.core.errors import SixfoldError
from sixfold.core.models import ResolvedModel
from sixfold.indexer.loaders import LoadLimits
from sixfold.indexer.prepare import Fatal, Job, Prepared, Skipped, TokenCounter

RAY_MISSING = "--ray needs Ray, which is not installed: pip install 'sixfold[ray]'"
LOADER_CPUS = 0.5  # a load+chunk task's CPU share: two per core (they wait on reads; the actors are the limit)
FILES_PER_BLOCK = 4  # files per input block (one loader task each): small, so results stream back early
FILES_PER_BATCH = 32  # files per embed call on an actor
TEXTS_PER_BATCH = 512  # lines per embed call of `embed --ray`
MAX_DEFAULT_ACTORS = 8
# The driver gives up, with one error line, when the cluster hands back nothing for this long (a lost node whose work
# cannot be placed again, a cluster without room for the actors): better than waiting forever.
STALL_SECONDS = float(os.environ.get("SIXFOLD_RAY_STALL_S", "600"))
_LOGGERS = ("ray", "ray.data", "ray.train", "ray.tune", "ray.serve")


def check_ray_arguments(address: str | None, actors: int | None) -> None:
    """``address``: None (no Ray), ``auto`` or a cluster address; ``actors``: None or a whole number >= 1, with an
    address. Anything else is one clear error (no Ray import: also checked where Ray is not installed)."""
    if actors is not None and (isinstance(actors, bool) or not isinstance(actors, int) or actors < 1):
        raise SixfoldError(f"the number of Ray actors must be a whole number of at least 1, got {actors!r}")
    if address is None:
        if actors is not None:
            raise SixfoldError("--ray-actors needs --ray ADDRESS (or --ray auto)")
        return
    if not isinstance(address, str) or not address.strip() or any(c.isspace() for c in address.strip()):
        raise SixfoldError(
            f"--ray takes 'auto' or a cluster address such as 10.0.0.5:6379 or ray://10.0.0.5:10001, got {address!r}"
        )
    if address.strip() != "auto":
        _host_port(address.strip())


def _host_port(address: str) -> tuple[str, int]:
    """(host, port) of ``HOST:PORT`` or ``ray://HOST:PORT``; a malformed address is one error line."""
    rest = address.split("://", 1)[1] if "://" in address else address
    host, sep, port = rest.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise SixfoldError(f"--ray takes 'auto' or a cluster address HOST:PORT (or ray://HOST:PORT), got {address!r}")
    return host.strip("[]"), int(port)


def ray_available() -> bool:
    """Whether Ray can be imported (the ``sixfold[ray]`` extra)."""
    try:
        import ray  # noqa: F401
    except ImportError:
        return False
    return True


def _import_ray():
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError:
        raise SixfoldError(RAY_MISSING) from None
    return ray


def _quiet_ray() -> None:
    """Ray's own log lines and progress bars off the terminal: sixfold's progress bar and warnings stay readable."""
    os.environ.setdefault("RAY_DEDUP_LOGS", "0")
    # The driver's C++ core worker logs to stderr; its ERROR lines are Ray's advice to Ray developers (e.g. "actor has
    # constructor arguments in the object store", said of every Ray Data actor pool). The cluster's log files keep them.
    os.environ.setdefault("RAY_BACKEND_LOG_LEVEL", "fatal")
    os.environ.setdefault("RAY_DATA_DISABLE_PROGRESS_BARS", "1")
    for name in _LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)


@contextlib.contextmanager
def _stderr_aside() -> Iterator[None]:
    """File descriptor 2 sent to /dev/null for a moment: what Ray's C++ side prints while it starts."""
    import sys

    with contextlib.suppress(Exception):
        sys.stderr.flush()
    try:
        saved = os.dup(2)
    except OSError:
        yield
        return
    try:
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, 2)
        os.close(null)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _reason(exc: BaseException) -> str:
    """One line saying why a Ray call failed: the cause a task or actor raised when there is one (a SixfoldError's
    message as is), else the exception's first line."""
    seen = 0
    while seen < 8:
        cause = getattr(exc, "cause", None) or exc.__cause__
        if cause is None or cause is exc:
            break
        exc, seen = cause, seen + 1
    if isinstance(exc, SixfoldError):
        return str(exc)
    text = (str(exc).strip().splitlines() or [""])[0].split(" Last connection error")[0].strip() or type(exc).__name__
    return f"{type(exc).__name__}: {text}" if type(exc).__name__ not in text else text


class RayCluster:
    """One run's connection to a Ray cluster: ``with RayCluster("auto") as cluster: ...``.

    ``address``: ``auto`` (what ``ray.init()`` does: the cluster this machine runs or ``$RAY_ADDRESS``, else a new
    local one for the run) or a cluster's address (``HOST:PORT`` of its head, or ``ray://HOST:PORT``). A Ray session
    this process already holds (``ray.init`` called by the caller) is used as it is and left open. ``actors``: embedder
    copies (default: one per GPU, else about half the cluster's CPUs, at most ``MAX_DEFAULT_ACTORS``)."""

    def __init__(self, address: str = "auto", actors: int | None = None) -> None:
        check_ray_arguments(address, actors)
        self.address = address.strip()
        self.actors = actors
        self._ray: Any = None
        self._owned = False
        self._readers: list[threading.Thread] = []

    def __enter__(self) -> RayCluster:
        ray = _import_ray()
        _quiet_ray()
        if not ray.is_initialized():
            if self.address != "auto":
                self._check_reachable()
            try:
                with _stderr_aside():  # "Set ray log level from environment variable ...": C++, on fd 2
                    ray.init(
                        address=None if self.address == "auto" else self.address,
                        log_to_driver=False,
                        logging_level=logging.ERROR,
                        include_dashboard=False,
                        configure_logging=True,
                    )
            except Exception as exc:
                raise SixfoldError(f"cannot connect to the Ray cluster at {self.address}: {_reason(exc)}") from None
            self._owned = True
        _quiet_ray()  # ray.init configures its loggers again
        self._ray = ray
        context = ray.data.DataContext.get_current()
        context.execution_options.preserve_order = True  # results come back in file order: the same chunk ids
        context.enable_progress_bars = False
        for name in ("print_on_execution_start", "enable_operator_progress_bars", "enable_rich_progress_bars"):
            if hasattr(context, name):
                setattr(context, name, False)
        return self

    def __exit__(self, *exc_info) -> None:
        if self._owned and self._ray is not None:
            # A reader thread still winding down (an interrupted run) must not ``ray.init()`` a new local cluster
            # on its next Ray call once the session is shut down: Ray's auto-connect is off until it has ended.
            from ray._private import auto_init_hook

            auto_connect = auto_init_hook.enable_auto_connect
            auto_init_hook.enable_auto_connect = False
            with contextlib.suppress(Exception):
                self._ray.shutdown()
            for reader in self._readers:
                reader.join(timeout=5)
            auto_init_hook.enable_auto_connect = auto_connect
        self._ray = None

    def _check_reachable(self, timeout: float = 5.0) -> None:
        """A quick TCP connect to the head: an address nobody answers at is one error line in seconds, not Ray's
        minute of retries."""
        host, port = _host_port(self.address)
        try:
            socket.create_connection((host, port), timeout=timeout).close()
        except OSError as exc:
            raise SixfoldError(f"cannot reach the Ray cluster at {self.address}: {exc.strerror or exc}") from None

    # ---- resources --------------------------------------------------------------------------------------------
    def resources(self) -> tuple[float, float]:
        """(CPUs, GPUs) the cluster has."""
        total = self._ray.cluster_resources()
        return float(total.get("CPU", 0)), float(total.get("GPU", 0))

    def actor_plan(self) -> tuple[int, dict]:
        """How many embedder actors, and the resources each asks for: a GPU each where the cluster has GPUs, else a
        CPU each, leaving about half the CPUs to the loader tasks."""
        cpus, gpus = self.resources()
        if gpus >= 1:
            count = self.actors or max(1, min(int(gpus), MAX_DEFAULT_ACTORS))
            return count, {"num_gpus": 1, "num_cpus": 1}
        count = self.actors or max(1, min(int(cpus) // 2, MAX_DEFAULT_ACTORS))
        # Actors holding every CPU would leave none to the loader tasks: the pipeline would wait forever. Past that
        # point each actor asks for a share (Ray gives it one torch thread either way).
        share = min(1.0, (cpus - LOADER_CPUS) / count) if cpus > LOADER_CPUS else 1.0
        return count, {"num_cpus": round(share, 3) if share >= 0.01 else 0.01}

    # ---- indexing ---------------------------------------------------------------------------------------------
    def index_files(
        self,
        todo: list[Job],
        model: ResolvedModel,
        counter: TokenCounter,
        chunk_sizes: tuple[int, int],
        limits: LoadLimits | None,
        batch_size: int = 64,
    ) -> Iterator[tuple[Prepared | Skipped | Fatal, np.ndarray | None]]:
        """Each job's result (prepared, skipped or fatal) with its vectors (None unless prepared), in ``todo``'s
        order, loaded, chunked and embedded on the cluster."""
        if not todo:
            return iter([])
        ray = self._ray
        setup = ray.put((counter, chunk_sizes[0], chunk_sizes[1], limits))
        rows = [{"seq": i, "job": pickle.dumps(job)} for i, job in enumerate(todo)]
        count, resources = self.actor_plan()
        dataset = (
            ray.data.from_items(rows, override_num_blocks=max(1, min(len(rows), -(-len(rows) // FILES_PER_BLOCK))))
            .map_batches(_prepare_batch, fn_kwargs={"setup": setup}, batch_size=None, num_cpus=LOADER_CPUS)
            .map_batches(
                _EmbedFiles,
                fn_constructor_args=(model.name, model.path, batch_size),
                batch_size=FILES_PER_BATCH,
                concurrency=count,
                **resources,
            )
        )
        return self._stream(dataset, len(rows), _file_results)

    # ---- bulk embedding ---------------------------------------------------------------------------------------
    def embed_texts(self, lines: list[int], texts: list[str], model: ResolvedModel, batch_size: int = 64) -> Iterator[np.ndarray]:
        """The texts' vectors, in order, a batch at a time, embedded in the cluster's actor pool."""
        if not texts:
            return iter([])
        ray = self._ray
        count, resources = self.actor_plan()
        rows = [{"seq": i, "text": t} for i, t in enumerate(texts)]
        blocks = max(1, min(len(rows) // TEXTS_PER_BATCH + 1, 10_000))
        dataset = ray.data.from_items(rows, override_num_blocks=blocks).map_batches(
            _EmbedTexts,
            fn_constructor_args=(model.name, model.path, batch_size),
            batch_size=TEXTS_PER_BATCH,
            concurrency=count,
            **resources,
        )
        return self._stream(dataset, len(rows), _text_vectors)

    def _stream(self, dataset, total: int, unpack: Callable[[dict], list]) -> Iterator:
        """``dataset``'s batches, unpacked, in order, on this thread: Ray is read on a helper thread so that a stall
        (``STALL_SECONDS`` without a result) or a Ctrl-C here ends the run at once, with the index as committed."""
        results: queue.Queue = queue.Queue(maxsize=4)
        stop = threading.Event()
        done = object()

        def read() -> None:
            try:
                for batch in dataset.iter_batches(batch_size=None, batch_format="numpy", prefetch_batches=2):
                    if stop.is_set():
                        return
                    results.put(batch)
            except BaseException as exc:  # handed to the driver's thread
                results.put(exc)
            finally:
                results.put(done)

        thread = threading.Thread(target=read, name="sixfold-ray-reader", daemon=True)
        thread.start()
        self._readers.append(thread)
        expected = 0
        try:
            last = time.monotonic()
            while True:
                try:
                    batch = results.get(timeout=1.0)
                except queue.Empty:
                    if time.monotonic() - last > STALL_SECONDS:
                        raise SixfoldError(
                            f"the Ray cluster returned nothing for {STALL_SECONDS:.0f} s (a node lost, or no room for the "
                            "embedder actors); the index keeps what was committed before: run the same command again to go on"
                        ) from None
                    continue
                last = time.monotonic()
                if batch is done:
                    break
                if isinstance(batch, BaseException):
                    if isinstance(batch, (SixfoldError, KeyboardInterrupt)):
                        raise batch
                    raise SixfoldError(
                        f"the Ray run stopped: {_reason(batch)}; the index keeps what was committed before: run the same "
                        "command again to go on"
                    ) from None
                for seq in batch["seq"].tolist():
                    if seq != expected:  # preserve_order is what keeps chunk ids as a local run gives them
                        raise SixfoldError(f"the Ray cluster returned item {seq} where {expected} was due (out of order)")
                    expected += 1
                yield from unpack(batch)
                last = time.monotonic()  # the driver's own time with the batch (writes, a commit) is not a stall
            if expected != total:
                raise SixfoldError(f"the Ray cluster returned {expected} of {total} items")
        finally:
            stop.set()
            deadline = time.monotonic() + 2.0
            while thread.is_alive() and time.monotonic() < deadline:  # unblock a reader waiting on the full queue; one
                with contextlib.suppress(queue.Empty):  # waiting on Ray ends with the session (``__exit__``)
                    results.get(timeout=0.1)


def _file_results(batch: dict) -> list[tuple[Prepared | Skipped | Fatal, np.ndarray | None]]:
    out = []
    for blob in batch["result"]:
        result, vectors, unseen = pickle.loads(blob)
        if unseen is not None and Path(unseen[1]).exists():
            raise SixfoldError(
                f"a Ray worker on {unseen[0]} cannot read {unseen[1]}: with --ray every node must see the indexed folder "
                "at the same path (one machine, or a shared filesystem)"
            )
        out.append((result, vectors))
    return out


def _text_vectors(batch: dict) -> list[np.ndarray]:
    return [np.asarray(batch["vector"], dtype=np.float32)]


# ---- on the cluster ---------------------------------------------------------------------------------------------
_chunkers: dict[bytes, Any] = {}


def _prepare_batch(batch: dict, setup) -> dict:
    """A loader task: load, detect and chunk each job of the batch (``prepare.prepare_file``, as a loader process
    does). A file the worker cannot see is marked, so that the driver can tell a file deleted meanwhile (skipped, as
    locally) from a node that does not share the folder (an error)."""
    import ray

    from sixfold.indexer.chunking import Chunker
    from sixfold.indexer.prepare import prepare_file

    is_ref = isinstance(setup, ray.ObjectRef)
    key = setup.binary() if is_ref else hashlib.sha1(pickle.dumps(setup)).digest()
    if key not in _chunkers:
        counter, chunk_tokens, overlap_tokens, limits = ray.get(setup) if is_ref else setup
        _chunkers.clear()
        _chunkers[key] = (Chunker(counter, chunk_tokens, overlap_tokens), limits)
    chunker, limits = _chunkers[key]
    out = []
    for blob in batch["job"]:
        job: Job = pickle.loads(blob)
        unseen = None if os.path.exists(job.path) else (socket.gethostname(), str(job.path))
        out.append(pickle.dumps((prepare_file(job, chunker, limits), unseen)))
    return {"seq": batch["seq"], "result": np.array(out, dtype=object)}


class _Embedder:
    """One copy of the embedder in an actor, loaded from the model folder the driver named (or by the model's name,
    when that folder is not on this node: a packaged model installed elsewhere)."""

    def __init__(self, name: str, path: str, batch_size: int) -> None:
        from sixfold.core.models import resolve_model
        from sixfold.indexer.embedding import open_embedder

        model = ResolvedModel(name, path) if Path(path).is_dir() else resolve_model(name, role="embedder")
        self.embedder = open_embedder(model)
        self.batch_size = batch_size


class _EmbedFiles(_Embedder):
    """An embed actor of ``index --ray``: the prepared files of a batch embedded in one encode call."""

    def __call__(self, batch: dict) -> dict:
        results = [pickle.loads(blob) for blob in batch["result"]]
        texts = [c.text for item, _unseen in results if isinstance(item, Prepared) for c in item.chunks]
        vectors = self.embedder.encode(texts, batch_size=self.batch_size)
        out, offset = [], 0
        for item, unseen in results:
            mine = None
            if isinstance(item, Prepared):
                mine = vectors[offset : offset + len(item.chunks)]
                offset += len(item.chunks)
            out.append(pickle.dumps((item, mine, unseen)))
        return {"seq": batch["seq"], "result": np.array(out, dtype=object)}


class _EmbedTexts(_Embedder):
    """An embed actor of ``embed --ray``: a batch of lines' vectors."""

    def __call__(self, batch: dict) -> dict:
        vectors = self.embedder.encode([str(t) for t in batch["text"]], batch_size=self.batch_size)
        return {"seq": batch["seq"], "vector": vectors}
