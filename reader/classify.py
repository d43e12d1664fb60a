"""Classification in the style of the classic /classifications API: labeled examples, nearest ones decide.

The examples are embedded once (cached on disk by content), the query's most similar examples are found,
and each label is scored by its centroid's similarity and the mean similarity of its best few examples;
a softmax turns those into per-label scores. The result names the label, the scores, and the examples that decided it.
"""

from __future__ import annotations

import csv
import hashlib
import io
import os
from pathlib import Path

import numpy as np

from sixfold.core.config import cache_dir
from sixfold.core.errors import SixfoldError
from sixfold.core.files import iter_jsonl
from sixfold.indexer.embedding import TextEmbedder
from sixfold.reader.types import Label, LabeledExample

TOP_PER_LABEL = 3
# Half label centroid, half mean of the label's 3 nearest examples: the centroid wins on coarse labels (TREC,
# SST-2, AG News), the nearest examples on fine-grained intents (BANKING77); the mix is best on average
# (bench/classify_eval.py and docs/benchmarks.md).
CENTROID_WEIGHT = 0.5
TEMPERATURE = 0.05
SHOWN_EXAMPLES = 5
TEXT_HEADERS = {"text", "sentence", "query", "question", "utterance"}
LABEL_HEADERS = {"label", "labels", "category", "class", "intent", "target"}


def load_examples(path: str | os.PathLike[str]) -> list[LabeledExample]:
    """Read ``text,label`` rows from CSV (header optional) or JSONL ``{"text", "label"}``; errors name the line."""
    path = Path(path)
    if not path.is_file():
        raise SixfoldError(f"examples file {path} does not exist")
    raw = path.read_text(encoding="utf-8-sig", errors="replace")  # -sig: files saved by Excel start with a BOM
    if not raw.strip():
        raise SixfoldError(f"examples file {path} is empty")
    examples: list[LabeledExample] = []
    if path.suffix.lower() in (".jsonl", ".json") or raw.lstrip().startswith("{"):
        for number, where, row in iter_jsonl(path, raw):
            if not isinstance(row, dict):
                raise SixfoldError(f"{where}: expected an object with text and label")
            examples.append(_example(row.get("text"), row.get("label"), path, number))
    else:
        dialect = csv.Sniffer().sniff(raw[:4096], delimiters=",\t;") if "\t" in raw[:4096] else csv.excel
        reader = csv.reader(io.StringIO(raw), dialect)
        end_of_previous = 0
        for index, row in enumerate(reader):
            number, end_of_previous = end_of_previous + 1, reader.line_num  # a quoted field may span lines
            if not row or not any(cell.strip() for cell in row):
                continue
            if index == 0 and row[0].strip().lower() in TEXT_HEADERS and row[-1].strip().lower() in LABEL_HEADERS:
                continue
            cells = [*row[:2], *[c for c in row[2:] if c.strip()]]  # trailing empty cells are fine
            if len(cells) != 2:
                raise SixfoldError(
                    f"{path} line {number}: expected two columns, text and label, got {len(cells)} "
                    "(quote a text that contains the delimiter)"
                )
            examples.append(_example(cells[0], cells[1], path, number))
    if not examples:
        raise SixfoldError(f"examples file {path} has no rows")
    if len({e.label for e in examples}) < 2:
        raise SixfoldError(f"examples file {path} has only one label ({examples[0].label}); classification needs at least two")
    return examples


def _example(text: object, label: object, path: Path, number: int) -> LabeledExample:
    if not isinstance(text, str) or not text.strip():
        raise SixfoldError(f"{path} line {number}: empty text")
    if label is None or not str(label).strip():
        raise SixfoldError(f"{path} line {number}: empty label")
    return LabeledExample(text=text.strip(), label=str(label).strip(), line=number)


class Classifier:
    def __init__(self, examples: list[LabeledExample], embedder: TextEmbedder, cache: bool = True) -> None:
        if len({e.label for e in examples}) < 2:
            raise SixfoldError("classification needs examples of at least two labels")
        self.examples = examples
        self.embedder = embedder
        self.labels = sorted({e.label for e in examples})
        self.label_index = np.array([self.labels.index(e.label) for e in examples])
        self.vectors = self._embed_examples(cache)
        centroids = np.stack([self.vectors[self.label_index == li].mean(axis=0) for li in range(len(self.labels))])
        self.centroids = centroids / np.linalg.norm(centroids, axis=1, keepdims=True)

    def _embed_examples(self, cache: bool) -> np.ndarray:
        digest = hashlib.sha256(self.embedder.name.encode())
        for example in self.examples:
            digest.update(example.text.encode() + b"\0" + example.label.encode() + b"\n")
        path = cache_dir() / "examples" / f"{digest.hexdigest()[:32]}.npy"
        if cache and path.is_file():
            vectors = np.load(path)
            if vectors.shape == (len(self.examples), self.embedder.dim):
                return vectors
        vectors = self.embedder.encode([e.text for e in self.examples])
        if cache:
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                tmp = path.with_suffix(".tmp.npy")
                np.save(tmp, vectors)
                tmp.replace(path)
            except OSError:
                pass
        return vectors

    def classify(self, queries: list[str], top_per_label: int = TOP_PER_LABEL, shown: int = SHOWN_EXAMPLES) -> list[Label]:
        for number, query in enumerate(queries, start=1):
            if not isinstance(query, str) or not query.strip():
                raise SixfoldError(f"query {number} is empty")
        query_vectors = self.embedder.encode([q.strip() for q in queries])
        sims = query_vectors @ self.vectors.T
        centroid_sims = query_vectors @ self.centroids.T
        results = []
        for query, row, to_centroids in zip(queries, sims, centroid_sims):
            label_scores = np.full(len(self.labels), -1.0)
            for li in range(len(self.labels)):
                own = np.sort(row[self.label_index == li])[::-1][:top_per_label]
                label_scores[li] = CENTROID_WEIGHT * float(to_centroids[li]) + (1 - CENTROID_WEIGHT) * float(own.mean())
            probs = np.exp((label_scores - label_scores.max()) / TEMPERATURE)
            probs /= probs.sum()
            best = int(np.argmax(probs))
            order = np.argsort(-row)[:shown]
            used = [
                LabeledExample(self.examples[i].text, self.examples[i].label, float(row[i]), self.examples[i].line) for i in order
            ]
            results.append(
                Label(
                    query=query,
                    label=self.labels[best],
                    score=float(probs[best]),
                    scores={label: float(p) for label, p in zip(self.labels, probs)},
                    examples=used,
                )
            )
        return results
