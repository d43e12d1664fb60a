"""`sixfold tune classifier`: a few-shot classifier trained SetFit-style on labeled examples, scored before and after.

SetFit (Tunstall et al. 2022): (1) contrastive fine-tuning of a sentence embedder on the examples, so that texts of one
label embed close together and texts of different labels apart; (2) a logistic-regression head on the tuned
embeddings. Two objectives (sentence-transformers' ``SentenceTransformerTrainer``):

- ``triplets`` (default): batches grouped by label (``GROUP_BY_LABEL``: two texts of each label in a batch; batch 16,
  up to 32 when there are more than 8 labels: ``triplet_batch``),
  ``BatchAllTripletLoss`` over every valid in-batch triplet with a cosine-distance margin; a fixed 120 steps. Measured
  (bench/peer_setfit.py, docs/benchmarks.md): it keeps what the pre-trained embedder knows once the margin holds, so it
  does not hurt fine-grained intents (BANKING77) as the pairs do, and it costs a fixed ~1-2 minutes here.
- ``pairs``: SetFit's own recipe, pairs sampled as its ``num_iterations`` does (per round, every example with one
  same-label and one other-label partner; cosine targets 1 and 0, ``CosineSimilarityLoss``): 2 x 20 x N pairs.

The head is scikit-learn's ``LogisticRegression`` with weak regularisation (C=100: on 8-shot BANKING77 5 points better
than the default C=1, within a point of it on TREC-6, AG News and SST-2), saved as plain arrays (no pickle).

Before / after: accuracy on held-out examples (``--eval FILE``, else a stratified share of the examples held out) of
the nearest-example scorer with the base embedder (what ``classify`` does untuned) and of the tuned classifier. The
version is saved as ``classifier@N`` with its label set and examples, and becomes active when it is better (or on
request); ``classify`` and ``/v1/classifications`` then use it for that label set.
"""

from __future__ import annotations

import json
import random
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from sixfold.core.errors import SixfoldError
from sixfold.core.loading import quiet, quiet_loading
from sixfold.reader.classify import BODY_DIR, EXAMPLES_FILE, HEAD_FILE, LinearHead
from sixfold.reader.types import LabeledExample
from sixfold.tuner.training import check_activate, latest_checkpoint, quiet_trainer, run_key, should_activate, trainer_settings
from sixfold.tuner.versions import Registry, TuneOutcome, saving

HOLDOUT = 0.2  # share of each label's examples held out for the before/after score when no eval file is given


@dataclass
class ClassifierTrainConfig:
    epochs: float = 1.0  # used only when max_steps is -1 (transformers: max_steps > 0 overrides the epochs)
    learning_rate: float = 2e-5
    batch_size: int = 16
    max_steps: int = 120
    seed: int = 42
    objective: str = "triplets"  # triplets: all in-batch triplets of label groups; pairs: SetFit's cosine targets 1 / 0
    pairs_per_example: int = 20  # pairs: SetFit's num_iterations, one same-label and one other-label partner each
    margin: float = 0.25  # triplets: cosine-distance margin
    max_length: int = 128
    head_c: float = 100.0  # inverse L2 strength of the logistic-regression head (scikit-learn's C)
    save_steps: int = 40  # a checkpoint every N steps: what a killed run resumes from


@dataclass
class ClassifierTuneResult(TuneOutcome):
    labels: list[str]
    train_examples: int
    eval_examples: int
    eval_source: str
    train_rows: int
    seconds: float
    notes: list[str] = field(default_factory=list)

    metric = "accuracy"


# ---- data ---------------------------------------------------------------------------------------------------------
def contrastive_pairs(examples: list[LabeledExample], iterations: int, seed: int) -> list[tuple[str, str, float]]:
    """(text, text, target cosine) rows: per iteration, each example with one same-label partner (1.0, when its label
    has another example) and one other-label partner (0.0)."""
    rng = random.Random(seed)
    by_label: dict[str, list[str]] = {}
    for e in examples:
        by_label.setdefault(e.label, []).append(e.text)
    texts = [e.text for e in examples]
    rows: list[tuple[str, str, float]] = []
    for _ in range(iterations):
        for e in examples:
            same = by_label[e.label]
            if len(same) > 1:
                partner = rng.choice(same)
                while partner == e.text and len(set(same)) > 1:
                    partner = rng.choice(same)
                rows.append((e.text, partner, 1.0))
            other = rng.choice(texts)
            while other in same:
                other = rng.choice(texts)
            rows.append((e.text, other, 0.0))
    rng.shuffle(rows)
    return rows


def split_examples(examples: list[LabeledExample], share: float, seed: int) -> tuple[list[LabeledExample], list[LabeledExample]]:
    """Hold out ``share`` of each label's examples (at least one, when the label has two or more)."""
    rng = random.Random(seed)
    by_label: dict[str, list[LabeledExample]] = {}
    for e in examples:
        by_label.setdefault(e.label, []).append(e)
    train, held = [], []
    for label in sorted(by_label):
        group = list(by_label[label])
        rng.shuffle(group)
        n = max(1, round(share * len(group))) if len(group) > 1 else 0
        held += group[:n]
        train += group[n:]
    return train, held


def triplet_batch(batch_size: int, labels: int) -> int:
    """The batch of a triplets run: two texts of as many labels as fit, up to twice ``batch_size``. More labels in a
    batch give each anchor more negatives; on 8-shot BANKING77 (77 labels) batch 32 scored 0.864 against 0.856 with
    16, while on the 4- and 6-label sets 32 was a point worse and twice as slow (docs/benchmarks.md)."""
    return max(batch_size, min(2 * labels, 2 * batch_size))


# ---- training -----------------------------------------------------------------------------------------------------
def train_body(
    examples: list[LabeledExample],
    base: str,
    out_dir: Path,
    config: ClassifierTrainConfig,
    callbacks: list | None = None,
    work_dir: Path | None = None,
) -> int:
    """Contrastive fine-tuning of the sentence embedder in ``base`` on ``examples``; the model is saved to ``out_dir``.
    Returns the number of training rows (pairs, or examples per epoch for triplets). Checkpoints go to ``work_dir`` (a
    killed run given the same folder resumes; removed once saved)."""
    import torch
    from datasets import Dataset
    from sentence_transformers import SentenceTransformer, SentenceTransformerTrainer, SentenceTransformerTrainingArguments
    from sentence_transformers.sentence_transformer import losses
    from transformers import set_seed

    from sixfold.core.device import choose_device

    set_seed(config.seed)
    device = choose_device()
    with quiet_loading("embedding model", base, "sentence_transformers"):
        model = SentenceTransformer(base, device=device, local_files_only=True, model_kwargs={"dtype": torch.float32})
    model.model_card_data.generate_widget_examples = False
    model.max_seq_length = min(int(model.max_seq_length or config.max_length), config.max_length)
    extra: dict = {}
    batch = config.batch_size
    if config.objective == "pairs":
        rows = contrastive_pairs(examples, config.pairs_per_example, config.seed)
        dataset = Dataset.from_dict(
            {"sentence1": [r[0] for r in rows], "sentence2": [r[1] for r in rows], "score": [r[2] for r in rows]}
        )
        loss = losses.CosineSimilarityLoss(model)
        size = len(rows)
    elif config.objective == "triplets":
        from sentence_transformers.sentence_transformer.training_args import BatchSamplers

        names = sorted({e.label for e in examples})
        dataset = Dataset.from_dict({"sentence": [e.text for e in examples], "label": [names.index(e.label) for e in examples]})
        distance = losses.BatchHardTripletLossDistanceFunction.cosine_distance
        loss = losses.BatchAllTripletLoss(model, distance_metric=distance, margin=config.margin)
        extra["batch_sampler"] = BatchSamplers.GROUP_BY_LABEL
        batch = triplet_batch(config.batch_size, len(names))
        size = len(examples)
    else:
        raise SixfoldError(f"unknown classifier objective '{config.objective}' (pairs or triplets)")
    with tempfile.TemporaryDirectory() as scratch:
        output = Path(work_dir) if work_dir else Path(scratch)
        args = SentenceTransformerTrainingArguments(
            output_dir=str(output),
            num_train_epochs=config.epochs,
            max_steps=config.max_steps,
            per_device_train_batch_size=batch,
            learning_rate=config.learning_rate,
            warmup_ratio=0.1,
            seed=config.seed,
            data_seed=config.seed,
            logging_steps=10,
            save_strategy="steps" if work_dir else "no",
            save_steps=config.save_steps,
            save_total_limit=1,
            **extra,
            **trainer_settings(device),
        )
        trainer = SentenceTransformerTrainer(model=model, args=args, train_dataset=dataset, loss=loss, callbacks=callbacks or [])
        quiet_trainer(trainer)
        with quiet("sentence_transformers"):
            trainer.train(resume_from_checkpoint=latest_checkpoint(output) if work_dir else None)
    model.save(str(out_dir), create_model_card=False)
    if work_dir:
        shutil.rmtree(work_dir, ignore_errors=True)
    return size


def train_classifier(
    examples: list[LabeledExample],
    base: str,
    out_dir: Path,
    config: ClassifierTrainConfig | None = None,
    callbacks: list | None = None,
    work_dir: Path | None = None,
) -> int:
    """Train body and head on ``examples`` into ``out_dir`` (``body/``, ``head.npz``, ``examples.jsonl``); returns
    the number of training pairs."""
    from sixfold.indexer.embedding import load_embedder

    config = config or ClassifierTrainConfig()
    if len({e.label for e in examples}) < 2:
        raise SixfoldError("a classifier needs examples of at least two labels")
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = train_body(examples, base, out_dir / BODY_DIR, config, callbacks, work_dir)
    body = load_embedder(str(out_dir / BODY_DIR))
    vectors = body.encode([e.text for e in examples])
    LinearHead.fit(vectors, [e.label for e in examples], config.head_c, config.seed).save(out_dir / HEAD_FILE)
    with open(out_dir / EXAMPLES_FILE, "w", encoding="utf-8") as handle:
        for e in examples:
            handle.write(json.dumps({"text": e.text, "label": e.label}, ensure_ascii=False) + "\n")
    return rows


# ---- scoring ------------------------------------------------------------------------------------------------------
def accuracy(predicted: list[str], gold: list[str]) -> float:
    return sum(p == g for p, g in zip(predicted, gold)) / max(len(gold), 1)


def tune_classifier(
    index_root: str | Path,
    examples: list[LabeledExample],
    eval_examples: list[LabeledExample] | None = None,
    *,
    base: str | None = None,
    config: ClassifierTrainConfig | None = None,
    activate: str = "auto",
    callbacks: list | None = None,
    say: Callable[[str], None] | None = None,
) -> ClassifierTuneResult:
    """Score the nearest-example classifier on held-out examples, train a SetFit-style classifier, score it, and
    save it as ``classifier@N`` in the index's registry (active when better, or as ``activate`` says)."""
    from sixfold.core.device import choose_device
    from sixfold.core.models import default_classifier_body, resolve_model
    from sixfold.indexer.embedding import load_embedder
    from sixfold.reader.classify import Classifier, TunedClassifier

    config = config or ClassifierTrainConfig()
    say = say or (lambda message: None)
    check_activate(activate)
    started = time.perf_counter()
    notes: list[str] = []
    if eval_examples:
        train, held, source = examples, eval_examples, "the eval file"
        unknown = sorted({e.label for e in held} - {e.label for e in train})
        if unknown:
            notes.append(f"{len(unknown)} eval labels have no training example and cannot be predicted: {', '.join(unknown[:5])}")
    else:
        train, held = split_examples(examples, HOLDOUT, config.seed)
        source = f"{len(held)} of the {len(examples)} examples, held out ({HOLDOUT:.0%} of each label)"
    if len({e.label for e in train}) < 2:
        raise SixfoldError("a classifier needs training examples of at least two labels")
    if not held:
        raise SixfoldError("no held-out examples to measure the classifier on: give --eval FILE or more examples per label")
    base_name = base or default_classifier_body(choose_device())
    base_path = resolve_model(base_name, role="classifier body").path
    gold = [e.label for e in held]
    untuned = Classifier(train, load_embedder(base_name), cache=False)
    before = {"accuracy": accuracy([lab.label for lab in untuned.classify([e.text for e in held])], gold)}
    say(f"nearest examples ({base_name}) on {len(held)} held-out examples: accuracy {before['accuracy']:.3f}")
    registry = Registry(index_root)
    number, tmp = registry.new_version_dir("classifier")
    with saving("classifier", tmp):
        work = registry.root / ".work" / f"classifier-{run_key(base_path, [(e.text, e.label) for e in train], config.__dict__)}"
        pairs = train_classifier(train, base_path, tmp, config, callbacks, work_dir=work)
        tuned = TunedClassifier.load(tmp, name=f"classifier@{number}")
        after = {"accuracy": accuracy([lab.label for lab in tuned.classify([e.text for e in held])], gold)}
        activated = should_activate(activate, ClassifierTuneResult.better(before, after))
        info = {
            "base": base_name,
            "labels": tuned.labels,
            "eval": after,
            "eval_before": before,  # nearest examples with the base embedder, same held-out examples
            "train_examples": len(train),
            "eval_examples": len(held),
            "train_rows": pairs,
            "config": config.__dict__,
        }
        path = registry.add("classifier", number, tmp, info, activated)
    return ClassifierTuneResult(
        "classifier", number, str(path), base_name, before, after, activated, tuned.labels, len(train), len(held), source,
        pairs, time.perf_counter() - started, notes,
    )  # fmt: skip
