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
from dataclasses import dataclass
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
# A tuned classifier's folder (sixfold.tuner.classifier): the tuned embedder, the head, the examples it learnt from.
BODY_DIR = "body"
HEAD_FILE = "head.npz"
EXAMPLES_FILE = "examples.jsonl"


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


def _check_queries(queries: list[str]) -> None:
    for number, query in enumerate(queries, start=1):
        if not isinstance(query, str) or not query.strip():
            raise SixfoldError(f"query {number} is empty")


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
        _check_queries(queries)
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
                    decided_by=f"nearest examples ({self.embedder.name})",
                )
            )
        return results


# ---- tuned: a SetFit-style classifier (sixfold.tuner.classifier) --------------------------------------------------
@dataclass
class LinearHead:
    """Multinomial logistic regression over normalised embeddings (one row per label; two labels share one row)."""

    labels: list[str]
    weights: np.ndarray  # (rows, dim)
    bias: np.ndarray  # (rows,)

    @classmethod
    def fit(cls, vectors: np.ndarray, labels: list[str], c: float = 1.0, seed: int = 0) -> LinearHead:
        from sklearn.linear_model import LogisticRegression

        model = LogisticRegression(C=c, max_iter=1000, random_state=seed).fit(vectors, labels)
        return cls([str(x) for x in model.classes_], model.coef_.astype(np.float32), model.intercept_.astype(np.float32))

    def probabilities(self, vectors: np.ndarray) -> np.ndarray:
        logits = vectors @ self.weights.T + self.bias
        if len(self.labels) == 2 and logits.shape[1] == 1:
            positive = 1.0 / (1.0 + np.exp(-logits[:, 0]))
            return np.stack([1.0 - positive, positive], axis=1)
        logits = logits - logits.max(axis=1, keepdims=True)
        exp = np.exp(logits)
        return exp / exp.sum(axis=1, keepdims=True)

    def save(self, path: Path) -> None:
        np.savez(path, weights=self.weights, bias=self.bias, labels=np.array(self.labels, dtype=object).astype(str))

    @classmethod
    def load(cls, path: Path) -> LinearHead:
        with np.load(path, allow_pickle=False) as data:
            return cls([str(x) for x in data["labels"]], data["weights"], data["bias"])


class TunedClassifier:
    """A ``classifier@N`` version: its tuned embedder embeds the query, its head decides the label; the examples
    shown are the ones nearest the query under the tuned embedder (its own, or the ones given)."""

    def __init__(self, name: str, body: TextEmbedder, head: LinearHead, examples: list[LabeledExample]) -> None:
        self.name = name
        self.body = body
        self.head = head
        self.labels = head.labels
        self.examples = examples
        self._vectors: np.ndarray | None = None

    @classmethod
    def load(cls, folder: str | os.PathLike[str], name: str | None = None) -> TunedClassifier:
        from sixfold.indexer.embedding import load_embedder

        folder = Path(folder)
        if not (folder / HEAD_FILE).is_file() or not (folder / BODY_DIR).is_dir():
            raise SixfoldError(f"{folder} is not a tuned classifier (no {HEAD_FILE} or {BODY_DIR}/)")
        path, examples = folder / EXAMPLES_FILE, []
        for number, _, row in iter_jsonl(path):
            if isinstance(row, dict):
                examples.append(_example(row.get("text"), row.get("label"), path, number))
        return cls(name or folder.name, load_embedder(str(folder / BODY_DIR)), LinearHead.load(folder / HEAD_FILE), examples)

    def classify(
        self, queries: list[str], examples: list[LabeledExample] | None = None, shown: int = SHOWN_EXAMPLES
    ) -> list[Label]:
        _check_queries(queries)
        vectors = self.body.encode([q.strip() for q in queries])
        probabilities = self.head.probabilities(vectors)
        if examples:
            pool, pool_vectors = examples, self.body.encode([e.text for e in examples])
        else:
            if self._vectors is None:
                self._vectors = self.body.encode([e.text for e in self.examples])
            pool, pool_vectors = self.examples, self._vectors
        sims = vectors @ pool_vectors.T
        results = []
        for query, probs, row in zip(queries, probabilities, sims):
            best = int(np.argmax(probs))
            order = np.argsort(-row)[:shown]
            used = [LabeledExample(pool[i].text, pool[i].label, float(row[i]), pool[i].line) for i in order]
            scores = {label: float(p) for label, p in zip(self.labels, probs)}
            results.append(Label(query, self.labels[best], float(probs[best]), scores, used, decided_by=self.name))
        return results


# ---- zero-shot: label names or descriptions, no examples ----------------------------------------------------------
def parse_labels(spec: str | list[str]) -> list[tuple[str, str]]:
    """Labels for zero-shot classification: ``"sports, politics"`` (``;`` separates them instead when there is one, so
    descriptions may hold commas) or a list; each ``name`` or ``name: description`` (the description, when given, is
    what the text is compared with). Returns (name, text) pairs."""
    items = (spec.split(";") if ";" in spec else spec.split(",")) if isinstance(spec, str) else spec
    labels: list[tuple[str, str]] = []
    for item in items:
        if not isinstance(item, str):
            raise SixfoldError("labels must be strings")
        name, _, description = item.partition(":")
        name, description = name.strip(), description.strip()
        if not name:
            continue
        if name in {n for n, _ in labels}:
            raise SixfoldError(f"label '{name}' is given twice")
        labels.append((name, description or name))
    if len(labels) < 2:
        raise SixfoldError("zero-shot classification needs at least two labels (e.g. --labels 'sports, politics')")
    return labels


class ZeroShotClassifier:
    """Label texts with no examples: each text goes to the label whose name (or description) it is most similar to
    under the embedder; a softmax at TEMPERATURE turns the cosines into scores."""

    def __init__(self, labels: list[tuple[str, str]], embedder: TextEmbedder) -> None:
        self.labels = [name for name, _ in labels]
        self.embedder = embedder
        self.vectors = embedder.encode([text for _, text in labels])

    def classify(self, queries: list[str]) -> list[Label]:
        _check_queries(queries)
        sims = self.embedder.encode([q.strip() for q in queries]) @ self.vectors.T
        results = []
        for query, row in zip(queries, sims):
            probs = np.exp((row - row.max()) / TEMPERATURE)
            probs /= probs.sum()
            best = int(np.argmax(probs))
            scores = {label: float(p) for label, p in zip(self.labels, probs)}
            decided_by = f"zero-shot from label names ({self.embedder.name})"
            results.append(Label(query, self.labels[best], float(probs[best]), scores, [], decided_by=decided_by))
        return results
