"""Embedder training pairs: read and validate ``{query, passage}`` JSONL, split, and detect train/eval overlap.

A row may carry ``"synthetic": true`` (written by ``tune embedder --synthesize``); the flag is kept so a
report can say its eval is on synthetic pairs.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path

from indexer.errors import SixfoldError
from tuner.qa_data import jsonl_rows


@dataclass(frozen=True)
class Pair:
    query: str
    passage: str
    synthetic: bool = False
    source: str = ""  # where the passage came from (a chunk's path), for synthesized pairs


def load_pairs(path: str | Path, what: str = "pairs") -> list[Pair]:
    """Read a JSONL file of ``{query, passage}`` rows; a bad row is an error naming its line."""
    path = Path(path)
    if not path.exists():
        raise SixfoldError(f"{what} file {path} does not exist")
    if not path.is_file():
        raise SixfoldError(f"{what} file {path} is not a file")
    text = path.read_text(encoding="utf-8-sig", errors="replace")
    if not text.strip():
        raise SixfoldError(f"{what} file {path} is empty")
    pairs: list[Pair] = []
    for _number, where, row in jsonl_rows(path, text):
        if not isinstance(row, dict):
            raise SixfoldError(f"{where}: expected a JSON object with 'query' and 'passage'")
        for key in ("query", "passage"):
            if not isinstance(row.get(key), str) or not row[key].strip():
                raise SixfoldError(f"{where}: missing or empty '{key}'")
        synthetic, source = bool(row.get("synthetic", False)), str(row.get("source", ""))
        pairs.append(Pair(row["query"].strip(), row["passage"].strip(), synthetic, source))
    if not pairs:
        raise SixfoldError(f"{what} file {path} has no pairs")
    return pairs


def write_pairs(pairs: list[Pair], path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as handle:
        for p in pairs:
            row = {"query": p.query, "passage": p.passage}
            if p.synthetic:
                row["synthetic"] = True
            if p.source:
                row["source"] = p.source
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")
    return path


def _key(text: str) -> str:
    return " ".join(text.lower().split())


def overlap(train: list[Pair], evaluation: list[Pair]) -> dict[str, int]:
    """Eval pairs whose query, or whose whole (query, passage) pair, also occurs in train."""
    queries = {_key(p.query) for p in train}
    whole = {(_key(p.query), _key(p.passage)) for p in train}
    return {
        "queries": sum(_key(p.query) in queries for p in evaluation),
        "pairs": sum((_key(p.query), _key(p.passage)) in whole for p in evaluation),
    }


def hold_out(pairs: list[Pair], fraction: float, seed: int) -> tuple[list[Pair], list[Pair]]:
    """Split by query (all pairs of one query land on the same side), shuffled with ``seed``."""
    if not 0.0 < fraction < 1.0:
        raise SixfoldError(f"--holdout must be between 0 and 1, got {fraction}")
    queries = sorted({_key(p.query) for p in pairs})
    if len(queries) < 2:
        raise SixfoldError("need at least 2 distinct queries to hold some out for evaluation (or pass --eval)")
    random.Random(seed).shuffle(queries)
    n_eval = min(max(1, round(len(queries) * fraction)), len(queries) - 1)
    held = set(queries[:n_eval])
    return [p for p in pairs if _key(p.query) not in held], [p for p in pairs if _key(p.query) in held]
