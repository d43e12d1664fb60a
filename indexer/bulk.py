"""Bulk embedding as a job: ``sixfold embed --file texts.txt --out vectors.parquet [--ray ADDRESS]``.

Each non-empty line of the file is one text; its vector goes to a Parquet file with the columns ``line`` (the line's
1-based number in the file), ``text`` and ``vector`` (float32, L2-normalised, a fixed-size list). Locally the lines
are embedded a batch at a time; with a ``RayCluster`` in the cluster's actor pool (``ray_pipeline``), streamed back in
order. The file is written to a temporary file beside ``out`` and renamed over it at the end: ``out`` is whole, or as
it was before (a failed or interrupted job leaves no half-written file).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from sixfold.core.errors import SixfoldError
from sixfold.core.models import ResolvedModel

if TYPE_CHECKING:
    from sixfold.indexer.embedding import Embedder
    from sixfold.indexer.ray_pipeline import RayCluster

LOCAL_BATCH = 1024  # lines per local encode call (and per Parquet row group at most)


@dataclass
class EmbedFileReport:
    file: str
    out: str
    model: str
    dimension: int
    texts: int
    seconds: float
    ray: bool

    def to_dict(self) -> dict:
        return asdict(self)


def read_lines(file: str | os.PathLike) -> tuple[list[int], list[str]]:
    """(1-based line numbers, texts) of the file's non-empty lines, stripped (as ``embed --file`` reads them)."""
    path = Path(file)
    if not path.is_file():
        raise SixfoldError(f"file {file} does not exist" if not path.exists() else f"{file} is not a file")
    lines, texts = [], []
    with open(path, encoding="utf-8", errors="replace") as handle:
        for number, line in enumerate(handle, start=1):
            text = line.strip()
            if text:
                lines.append(number)
                texts.append(text)
    if not texts:
        raise SixfoldError(f"no text to embed: {file} has no non-empty line")
    return lines, texts


def embed_file(
    embedder: Embedder,
    file: str | os.PathLike,
    out: str | os.PathLike,
    *,
    batch_size: int = 64,
    cluster: RayCluster | None = None,
    on_progress: Callable[[int, int], None] | None = None,
) -> EmbedFileReport:
    """Embed ``file``'s lines into the Parquet file ``out`` (see the module's docstring); ``on_progress(done, total)``."""
    import time

    import pyarrow as pa
    import pyarrow.parquet as pq

    started = time.perf_counter()
    target = Path(out).expanduser()
    if target.is_dir():
        raise SixfoldError(f"--out {out} is a folder; give a file name such as vectors.parquet")
    if not target.parent.is_dir():
        raise SixfoldError(f"the folder of --out {out} does not exist")
    lines, texts = read_lines(file)
    dim = int(embedder.dim)
    schema = pa.schema([("line", pa.int64()), ("text", pa.string()), ("vector", pa.list_(pa.float32(), dim))])
    if cluster is not None:
        model = ResolvedModel(embedder.name, str(getattr(embedder, "path", embedder.name)))
        batches: Iterator[np.ndarray] = cluster.embed_texts(lines, texts, model, batch_size)
    else:
        batches = (embedder.encode(texts[i : i + LOCAL_BATCH], batch_size=batch_size) for i in range(0, len(texts), LOCAL_BATCH))
    handle, temp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(handle)
    try:
        done = 0
        if on_progress is not None:
            on_progress(0, len(texts))  # the bar starts (and times) before the first batch
        with pq.ParquetWriter(temp, schema) as writer:
            for vectors in batches:
                vectors = np.ascontiguousarray(vectors, dtype=np.float32).reshape(-1, dim)
                n = len(vectors)
                if done + n > len(texts):
                    raise SixfoldError(f"the embedder returned more vectors than the {len(texts)} lines")
                column = pa.FixedSizeListArray.from_arrays(pa.array(vectors.reshape(-1), pa.float32()), dim)
                writer.write_table(
                    pa.table(
                        {"line": pa.array(lines[done : done + n], pa.int64()), "text": texts[done : done + n], "vector": column},
                        schema=schema,
                    )
                )
                done += n
                if on_progress is not None:
                    on_progress(done, len(texts))
        if done != len(texts):
            raise SixfoldError(f"only {done} of {len(texts)} lines were embedded")
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(temp, 0o666 & ~umask)  # mkstemp's file is private; the result is an ordinary file
        os.replace(temp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise
    finally:
        close = getattr(batches, "close", None)
        if close is not None:
            close()
    return EmbedFileReport(
        str(file), str(target), embedder.name, dim, len(texts), time.perf_counter() - started, cluster is not None
    )
