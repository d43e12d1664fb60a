"""``sixfold eval classify``: accuracy and macro-F1 (scikit-learn) of nearest-example classification on a labeled
test file, from labeled examples (all of them, or ``shots`` per label); with ``tune``, also of a SetFit-style
classifier trained on the same examples (``sixfold.tuner.classifier``)."""

from __future__ import annotations

import random
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

from sixfold.eval.reports import ClassifyReport, Confusion, TunedScores

if TYPE_CHECKING:
    from sixfold.reader.types import LabeledExample
    from sixfold.tuner.classifier import ClassifierTrainConfig


def sample_shots(examples: list[LabeledExample], shots: int | None, seed: int = 0) -> list[LabeledExample]:
    """``shots`` examples per label (all when None), drawn reproducibly; labels in sorted order."""
    if not shots:
        return examples
    by_label: dict[str, list[LabeledExample]] = {}
    for e in examples:
        by_label.setdefault(e.label, []).append(e)
    rng = random.Random(seed)
    return [e for label in sorted(by_label) for e in rng.sample(by_label[label], min(shots, len(by_label[label])))]


def top_confusions(gold: list[str], predicted: list[str], top: int = 5) -> list[Confusion]:
    """The most frequent (gold -> predicted) mistakes."""
    from sklearn.metrics import confusion_matrix

    labels = sorted(set(gold) | set(predicted))
    matrix = confusion_matrix(gold, predicted, labels=labels)
    pairs = [(i, j) for i in range(len(labels)) for j in range(len(labels)) if i != j and matrix[i][j]]
    mistakes = sorted(((int(matrix[i][j]), labels[i], labels[j]) for i, j in pairs), reverse=True)
    return [Confusion(count, g, p) for count, g, p in mistakes[:top]]


def eval_classify(
    train: str | Path,
    test: str | Path,
    *,
    shots: int | None = None,
    seed: int = 0,
    limit: int | None = None,
    model: str | None = None,
    tune: bool = False,
    config: ClassifierTrainConfig | None = None,
    callbacks: list | None = None,
) -> ClassifyReport:
    """Accuracy and macro-F1 of nearest-example classification; ``shots`` examples per label (all when None).
    ``tune``: train a SetFit-style classifier on the same examples (``config``) in a scratch folder and score it too."""
    from sklearn.metrics import accuracy_score, f1_score

    from sixfold.core.models import DEFAULT_EMBEDDER
    from sixfold.indexer.embedding import load_embedder
    from sixfold.reader.classify import Classifier, load_examples

    examples = sample_shots(load_examples(train), shots, seed)
    tests = load_examples(test)
    if limit:
        tests = random.Random(seed).sample(tests, min(limit, len(tests)))
    texts, gold = [t.text for t in tests], [t.label for t in tests]
    classifier = Classifier(examples, load_embedder(model or DEFAULT_EMBEDDER))
    started = time.perf_counter()
    predicted = [label.label for label in classifier.classify(texts)]
    seconds = time.perf_counter() - started
    tuned = _tuned_scores(examples, texts, gold, model or DEFAULT_EMBEDDER, config, callbacks) if tune else None
    return ClassifyReport(
        train=str(train),
        test=str(test),
        examples=len(examples),
        test_items=len(tests),
        shots=shots,
        accuracy=float(accuracy_score(gold, predicted)),
        macro_f1=float(f1_score(gold, predicted, average="macro")),
        ms_per_item=1000 * seconds / max(len(tests), 1),
        top_confusions=top_confusions(gold, predicted),
        tuned=tuned,
    )


def _tuned_scores(
    examples: list[LabeledExample],
    texts: list[str],
    gold: list[str],
    base: str,
    config: ClassifierTrainConfig | None,
    callbacks: list | None,
) -> TunedScores:
    from sklearn.metrics import accuracy_score, f1_score

    from sixfold.core.models import resolve_model
    from sixfold.reader.classify import TunedClassifier
    from sixfold.tuner.classifier import train_classifier

    with tempfile.TemporaryDirectory(prefix="sixfold-eval-classifier-") as scratch:
        started = time.perf_counter()
        pairs = train_classifier(examples, resolve_model(base).path, Path(scratch), config, callbacks)
        trained = time.perf_counter() - started
        tuned = TunedClassifier.load(scratch, name="tuned")
        started = time.perf_counter()
        predicted = [label.label for label in tuned.classify(texts)]
        seconds = time.perf_counter() - started
    return TunedScores(
        accuracy=float(accuracy_score(gold, predicted)),
        macro_f1=float(f1_score(gold, predicted, average="macro")),
        ms_per_item=1000 * seconds / max(len(texts), 1),
        train_seconds=trained,
        train_rows=pairs,
        top_confusions=top_confusions(gold, predicted),
    )
