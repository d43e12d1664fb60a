"""The typed results of ``sixfold eval`` and their JSON report files.

Each report is a dataclass with ``to_dict()``: the one serialisation that ``--json``, the report file and scripts
read (measure names as published: ``nDCG@10``, ``EM``, ...). ``report["EM"]`` reads that same view by key.
Every eval writes its report whole (temporary file + rename), to ``--out`` or a time-stamped file in the eval cache.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import Field, asdict, dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from sixfold.core.config import cache_dir
from sixfold.core.errors import SixfoldError


class _Report:
    """The base of the report dataclasses (each subclass is one; ``asdict`` needs its fields)."""

    kind: ClassVar[str]
    __dataclass_fields__: ClassVar[dict[str, Field[Any]]]

    @property
    def source(self) -> str:
        """The benchmark file or folder the report is about (it names the report file)."""
        raise NotImplementedError

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def __getitem__(self, key: str) -> Any:
        return self.to_dict()[key]


@dataclass
class ModeScores:
    """One retrieval mode over the judged queries (ir-measures), with per-query latency."""

    ndcg10: float
    recall10: float
    recall100: float
    mrr10: float
    seconds: float
    p50_ms: float
    p95_ms: float

    def to_dict(self) -> dict[str, float]:
        return {
            "nDCG@10": self.ndcg10,
            "Recall@10": self.recall10,
            "Recall@100": self.recall100,
            "MRR@10": self.mrr10,
            "seconds": self.seconds,
            "p50_ms": self.p50_ms,
            "p95_ms": self.p95_ms,
        }


@dataclass
class RetrievalReport(_Report):
    kind: ClassVar[str] = "retrieval"

    dataset: str
    name: str
    format: str  # beir | classic | xquad-r
    split: str
    queries: int  # judged queries scored (after --limit)
    queries_total: int
    documents: int
    chunks: int
    index_seconds: float
    notes: list[str] = field(default_factory=list)
    reranker: str | None = None
    modes: dict[str, ModeScores] = field(default_factory=dict)
    # Cross-lingual runs only (None elsewhere, and then left out of the report, which stays as it was):
    query_language: str | None = None  # the questions' language
    corpus_language: str | None = None  # the documents' (sentences') language
    index_defaults: dict[str, Any] | None = None  # what the eval index got: embedder, search mode, languages, ...
    query_modes: dict[str, int] | None = None  # the 'default' mode: queries per mode it searched them in

    OPTIONAL: ClassVar[tuple[str, ...]] = ("query_language", "corpus_language", "index_defaults", "query_modes")

    @property
    def source(self) -> str:
        return self.dataset

    def to_dict(self) -> dict[str, Any]:
        data = {
            key: value for key, value in self.__dict__.items() if key != "modes" and not (key in self.OPTIONAL and value is None)
        }
        return data | {"modes": {mode: scores.to_dict() for mode, scores in self.modes.items()}}


@dataclass
class QAReport(_Report):
    kind: ClassVar[str] = "qa"

    squad: str
    questions: int
    open_book: bool
    mode: str  # extractive | generative
    em: float  # percent
    f1: float  # percent
    answered_pct: float
    p50_s: float
    k: int = 5
    recall: float | None = None  # open book: percent of questions whose gold paragraph is among the k passages

    @property
    def source(self) -> str:
        return self.squad

    def to_dict(self) -> dict[str, Any]:
        data = {
            "squad": self.squad,
            "questions": self.questions,
            "open_book": self.open_book,
            "mode": self.mode,
            "EM": self.em,
            "F1": self.f1,
            "answered_pct": self.answered_pct,
            "p50_s": self.p50_s,
        }
        return data | ({f"recall@{self.k}": self.recall} if self.recall is not None else {})


@dataclass
class Confusion:
    count: int
    gold: str
    predicted: str


@dataclass
class TunedScores:
    """``eval classify --tune``: the SetFit-style classifier trained on the same sampled examples."""

    accuracy: float
    macro_f1: float
    ms_per_item: float
    train_seconds: float
    train_rows: int
    top_confusions: list[Confusion] = field(default_factory=list)


@dataclass
class ClassifyReport(_Report):
    kind: ClassVar[str] = "classify"

    train: str
    test: str
    examples: int
    test_items: int
    shots: int | None
    accuracy: float
    macro_f1: float
    ms_per_item: float
    top_confusions: list[Confusion] = field(default_factory=list)
    tuned: TunedScores | None = None

    @property
    def source(self) -> str:
        return self.test


Report = RetrievalReport | QAReport | ClassifyReport


# ---- where reports and eval indexes live ----------------------------------------------------------
def eval_name(source: str | os.PathLike) -> str:
    """A benchmark's name for its cache folder and report file: ``scifact``, ``squad-dev_json``."""
    path = Path(source).resolve()
    name = f"{path.parent.name}-{path.name}" if path.is_file() else path.name
    return name.replace(".", "_")


def eval_index(given: str | os.PathLike | None, source: str | os.PathLike) -> Path:
    """The index an eval builds (and reuses incrementally): ``given``, else ``<cache>/eval/<name>``."""
    return Path(given) if given else cache_dir() / "eval" / eval_name(source)


def check_report_path(given: str | os.PathLike | None) -> None:
    """Fail before a long eval, not after it, when ``--out`` cannot be written."""
    if not given:
        return
    path = Path(given)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        probe = path.with_name(path.name + ".tmp")
        probe.write_text("")
        probe.unlink()
    except OSError as exc:
        raise SixfoldError(f"cannot write the report to {path}: {exc.strerror or exc}") from None


def write_report(report: Report, given: str | os.PathLike | None = None) -> Path:
    """Write ``report`` whole to ``given``, else ``<cache>/eval/reports/<kind>-<name>-<time>.json``; returns the path."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    path = Path(given) if given else cache_dir() / "eval" / "reports" / f"{report.kind}-{eval_name(report.source)}-{stamp}.json"
    tmp = path.with_name(path.name + ".tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "w", encoding="utf-8") as handle:
            json.dump(report.to_dict(), handle, indent=2, default=str)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        if tmp.is_file():
            tmp.unlink()
        raise SixfoldError(f"cannot write the report to {path}: {exc.strerror or exc}") from None
    return path
