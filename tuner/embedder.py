"""`sixfold tune embedder`: pairs (given or synthesized) -> score the index's embedder -> train -> score again ->
save a version -> when it becomes active, re-embed the index with it.

Training: sentence-transformers' ``SentenceTransformerTrainer`` with ``MultipleNegativesRankingLoss`` (the other
passages of a batch are the negatives; the no-duplicates sampler keeps a passage from being its own negative). Seeds
are fixed, checkpoints are written to a work folder named after the run's inputs so a killed run resumes, CUDA +
mixed precision when present.

Scoring: nDCG@10 and Recall@10 (ir-measures) of each eval query against a candidate pool of all eval passages plus
the index's chunks as distractors (when the index is small enough to embed them twice), by cosine similarity.

Versions: the index records the model its vectors come from; a tuned version is recorded as ``embedder@N`` (its
folder is ``idx/models/embedder/N``; ``sixfold.indexer.embedding.load_index_embedder`` loads it), so ``search`` embeds
queries with the same model that embedded the chunks. Making a version active, or rolling back, re-embeds every chunk
into a new generation that is swapped in atomically (``sixfold.indexer.reembed``): a failed or killed re-embed leaves the
previous model and vectors current.
"""

from __future__ import annotations

import random
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from sixfold.core.errors import SixfoldError, first_line
from sixfold.core.loading import quiet, quiet_loading
from sixfold.core.models import TUNED_EMBEDDER_PREFIX, ResolvedModel, resolve_model, tuned_embedder_number
from sixfold.indexer.embedding import (
    Embedder,
    embedder_is_tunable,
    index_embedder_model,
    is_dual,
    open_embedder,
    write_dual_marker,
)
from sixfold.tuner.data import Pair, hold_out, load_pairs, pair_overlap, text_key
from sixfold.tuner.training import (
    check_activate,
    check_trainable_here,
    latest_checkpoint,
    quiet_trainer,
    run_key,
    should_activate,
    trainer_settings,
)
from sixfold.tuner.versions import Registry, TuneOutcome, saving

HOLDOUT = 0.2  # of the pairs held out by query for the before/after eval, when no eval file is given


@dataclass
class EmbedderTrainConfig:
    epochs: float = 1.0
    learning_rate: float = 2e-5
    batch_size: int = 32
    max_steps: int = -1
    max_seq_length: int = 256
    warmup_ratio: float = 0.1
    seed: int = 42
    save_steps: int = 50


def train_embedder(
    base_model: str,
    pairs: list[Pair],
    work_dir: str | Path,
    save_to: str | Path,
    config: EmbedderTrainConfig | None = None,
    callbacks: list | None = None,
) -> Path:
    """Train from ``base_model`` (a sentence-transformers folder) on ``pairs`` and save the model to ``save_to``."""
    import torch
    from datasets import Dataset
    from sentence_transformers import SentenceTransformer, SentenceTransformerTrainer, SentenceTransformerTrainingArguments
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss
    from sentence_transformers.sentence_transformer.training_args import BatchSamplers
    from transformers import set_seed

    config = config or EmbedderTrainConfig()
    set_seed(config.seed)
    work_dir, save_to = Path(work_dir), Path(save_to)
    cuda = torch.cuda.is_available()
    with quiet_loading("embedding model", base_model, "sentence_transformers"):
        model = SentenceTransformer(
            base_model, device="cuda" if cuda else "cpu", local_files_only=True, model_kwargs={"dtype": torch.float32}
        )
    model.model_card_data.generate_widget_examples = False  # no model card: it only prints a progress bar
    model.max_seq_length = min(int(model.max_seq_length or config.max_seq_length), config.max_seq_length)
    dataset = Dataset.from_dict({"anchor": [p.query for p in pairs], "positive": [p.passage for p in pairs]})
    args = SentenceTransformerTrainingArguments(
        output_dir=str(work_dir),
        num_train_epochs=config.epochs,
        max_steps=config.max_steps,
        per_device_train_batch_size=config.batch_size,
        learning_rate=config.learning_rate,
        warmup_steps=config.warmup_ratio,
        seed=config.seed,
        data_seed=config.seed,
        batch_sampler=BatchSamplers.NO_DUPLICATES,
        logging_steps=1,
        save_strategy="steps",
        save_steps=config.save_steps,
        save_total_limit=1,
        **trainer_settings(),
    )
    trainer = SentenceTransformerTrainer(
        model=model,
        args=args,
        train_dataset=dataset,
        loss=MultipleNegativesRankingLoss(model),
        callbacks=callbacks or [],
    )
    quiet_trainer(trainer)
    with quiet("sentence_transformers"):
        trainer.train(resume_from_checkpoint=latest_checkpoint(work_dir))
    model.save(str(save_to), create_model_card=False)
    shutil.rmtree(work_dir, ignore_errors=True)
    return save_to


def retrieval_scores(embedder: Embedder, pairs: list[Pair], distractors: list[str] | None = None) -> dict[str, float]:
    """nDCG@10 and Recall@10 (0-1) of the pairs' queries over all their passages plus ``distractors``."""
    import ir_measures
    from ir_measures import R, nDCG

    docs: dict[str, int] = {}
    for text in [p.passage for p in pairs] + list(distractors or []):
        docs.setdefault(text_key(text), len(docs))
    texts: dict[int, str] = {}
    for text in [p.passage for p in pairs] + list(distractors or []):
        texts.setdefault(docs[text_key(text)], text)
    queries: dict[str, int] = {}
    query_text: list[str] = []
    qrels = []
    for p in pairs:
        if text_key(p.query) not in queries:
            queries[text_key(p.query)] = len(queries)
            query_text.append(p.query)
        qrels.append(ir_measures.Qrel(f"q{queries[text_key(p.query)]}", f"d{docs[text_key(p.passage)]}", 1))
    doc_vectors = embedder.encode([texts[i] for i in range(len(texts))])
    query_vectors = embedder.encode_queries(query_text)  # as search embeds them (a prompt; the dual model's half)
    scores = query_vectors @ doc_vectors.T
    top = np.argsort(-scores, axis=1)[:, :100]
    run = [ir_measures.ScoredDoc(f"q{q}", f"d{d}", float(scores[q, d])) for q in range(len(query_text)) for d in top[q].tolist()]
    result = ir_measures.calc_aggregate([nDCG @ 10, R @ 10], qrels, run)
    return {"nDCG@10": float(result[nDCG @ 10]), "Recall@10": float(result[R @ 10])}


def load_for_eval(name: str, path: str) -> Embedder:
    """A fresh (uncached) embedder, so a just-trained folder is read as saved."""
    return open_embedder(ResolvedModel(name, path))


MAX_DISTRACTORS = 2000  # index chunks added to the eval pool when the index is small enough to embed them twice


@dataclass
class EmbedderTuneResult(TuneOutcome):
    train_pairs: int
    eval_pairs: int
    eval_queries: int
    pool: int
    overlap: dict[str, int]
    synthetic_eval: bool
    eval_source: str
    generation: str | None = None
    notes: list[str] = field(default_factory=list)


def _distractors(index_root: str | Path, seed: int) -> list[str]:
    from sixfold.indexer.store import IndexStore

    snapshot = IndexStore(index_root).open()
    try:
        ids = [int(i) for i in snapshot.con.execute("SELECT chunk_id FROM chunks").fetchnumpy()["chunk_id"]]
        if len(ids) > MAX_DISTRACTORS:
            ids = random.Random(seed).sample(ids, MAX_DISTRACTORS)
        return [row["text"] for row in snapshot.chunks(ids).values()]
    finally:
        snapshot.close()


def tune_embedder(
    index_root: str | Path,
    pairs: list[Pair],
    eval_file: str | Path | None = None,
    *,
    holdout: float = HOLDOUT,
    config: EmbedderTrainConfig | None = None,
    activate: str = "auto",
    force: bool = False,
    callbacks: list | None = None,
    on_reembed: Callable[[int, int], None] | None = None,
) -> EmbedderTuneResult:
    """Train a new embedder version on ``pairs``; ``activate``: auto (if better on nDCG@10), yes or no."""
    check_activate(activate)
    config = config or EmbedderTrainConfig()
    base = index_embedder_model(index_root)  # no index, or its model folder is missing: said before any work
    base_name, base_path = base.name, base.path
    if not embedder_is_tunable(base):
        raise SixfoldError(
            f"this index's embedder {base_name} cannot be fine-tuned (it is not a sentence-transformers model); "
            "index into a new folder with --model all-MiniLM-L6-v2 (or another sentence-transformers model) to tune it"
        )
    dual = is_dual(base)  # train its English half (the packaged MiniLM's folder, or a tuned version's own)
    if dual and tuned_embedder_number(base_name) is None:
        base_path = resolve_model("all-MiniLM-L6-v2").path
    if eval_file is not None:
        evaluation = load_pairs(eval_file, "eval pairs")
        train, source = pairs, str(eval_file)
    else:
        train, evaluation = hold_out(pairs, holdout, config.seed)
        source = f"{round(holdout * 100)}% of the pairs held out by query"
    shared = pair_overlap(train, evaluation)
    check_trainable_here(base_path, force)
    distractors = _distractors(index_root, config.seed)
    before = retrieval_scores(load_for_eval(base_name, base_path), evaluation, distractors)
    registry = Registry(index_root)
    number, tmp = registry.new_version_dir("embedder")
    key = run_key(base_path, [(p.query, p.passage) for p in train], config.__dict__)
    with saving("embedder", tmp):
        train_embedder(base_path, train, registry.root / ".work" / f"embedder-{key}", tmp, config, callbacks)
        if dual:
            write_dual_marker(tmp)
        after = retrieval_scores(load_for_eval(f"{TUNED_EMBEDDER_PREFIX}{number}", str(tmp)), evaluation, distractors)
        do_activate = should_activate(activate, EmbedderTuneResult.better(before, after))
        info = {
            "base": base_name,
            "eval": after,
            "eval_before": before,
            "eval_source": source,
            "synthetic_eval": any(p.synthetic for p in evaluation),
            "train_pairs": len(train),
            "eval_pairs": len(evaluation),
            "config": config.__dict__,
        }
        if "base_model" not in registry.load().get("embedder", {}):
            # the model a rollback to embedder@base re-embeds with: the index's model before any tuning
            original = None if tuned_embedder_number(base_name) is not None else base_name
            registry.set_role_field("embedder", "base_model", original)
        final = registry.add("embedder", number, tmp, info, activate=False)
    generation = activate_embedder(index_root, number, on_reembed) if do_activate else None
    return EmbedderTuneResult(
        "embedder",
        number,
        str(final),
        base_name,
        before,
        after,
        do_activate,
        len(train),
        len(evaluation),
        len({p.query.lower() for p in evaluation}),
        len({p.passage for p in evaluation} | set(distractors)),
        shared,
        any(p.synthetic for p in evaluation),
        source,
        generation,
    )


def activate_embedder(
    index_root: str | Path, number: int | None, on_progress: Callable[[int, int], None] | None = None
) -> str | None:
    """Make ``embedder@number`` (None: the base model) the index's model: re-embed, then record it as active.

    Returns the new generation, or None when the index already uses that model (then only the registry is updated).
    """
    import duckdb

    from sixfold.indexer.reembed import reembed_index
    from sixfold.indexer.store import IndexStore

    store = IndexStore(index_root)
    registry = Registry(index_root)
    current = store.read_pointer()["model"]
    if number is None:
        base = registry.load().get("embedder", {}).get("base_model")
        if not base:
            raise SixfoldError("no embedder base model recorded for this index; nothing to roll back to")
        target_name, target_path = base, resolve_model(base).path
    else:
        target_name, target_path = f"{TUNED_EMBEDDER_PREFIX}{number}", str(registry.version_dir("embedder", number))
    generation = None
    if current != target_name:
        embedder = open_embedder(ResolvedModel(target_name, target_path))
        try:
            generation = reembed_index(store, embedder, on_progress)
        except (OSError, duckdb.Error, RuntimeError) as exc:
            raise SixfoldError(f"re-embedding the index failed ({first_line(exc)[:200]}); it still uses {current}") from None
    registry.use("embedder", number)
    return generation
