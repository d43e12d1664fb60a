"""`sixfold tune embedder`: pairs (given or synthesized) -> score the index's embedder -> train -> score again ->
save a version -> when it becomes active, re-embed the index with it.

The index records the model its vectors come from. A tuned version is recorded as ``embedder@N`` (its folder is
``idx/models/embedder/N``), so ``search`` embeds queries with the same model that embedded the chunks. Making a
version active, or rolling back, re-embeds every chunk into a new generation that is swapped in atomically
(``indexer.reembed``): a failed or killed re-embed leaves the previous model and vectors current.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from indexer.embedding import Embedder, index_embedder_model
from indexer.errors import SixfoldError
from indexer.models import TUNED_EMBEDDER_PREFIX, resolve_model, tuned_embedder_path
from indexer.store import IndexStore
from tuner.embedder import EmbedderTrainConfig, load_for_eval, retrieval_scores, run_key, train_embedder
from tuner.guard import check_trainable_here
from tuner.pairs import Pair, hold_out, load_pairs, overlap
from tuner.versions import Registry, TuneOutcome, saving

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


def current_embedder(index_root: str | Path) -> tuple[str, str]:
    """(name the index records, model folder) of the index's current embedder."""
    model = index_embedder_model(index_root)
    return model.name, model.path


def _distractors(index_root: str | Path, seed: int) -> list[str]:
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
    holdout: float = 0.2,
    config: EmbedderTrainConfig | None = None,
    activate: str = "auto",
    force: bool = False,
    callbacks: list | None = None,
    on_reembed: Callable[[int, int], None] | None = None,
) -> EmbedderTuneResult:
    """Train a new embedder version on ``pairs``; ``activate``: auto (if better on nDCG@10), yes or no."""
    if activate not in ("auto", "yes", "no"):
        raise SixfoldError(f"--activate takes auto, yes or no, not {activate}")
    config = config or EmbedderTrainConfig()
    IndexStore(index_root).read_pointer()
    if eval_file is not None:
        evaluation = load_pairs(eval_file, "eval pairs")
        train, source = pairs, str(eval_file)
    else:
        train, evaluation = hold_out(pairs, holdout, config.seed)
        source = f"{round(holdout * 100)}% of the pairs held out by query"
    shared = overlap(train, evaluation)
    base_name, base_path = current_embedder(index_root)
    check_trainable_here(base_path, force)
    distractors = _distractors(index_root, config.seed)
    before = retrieval_scores(load_for_eval(base_name, base_path), evaluation, distractors)
    registry = Registry(index_root)
    number, tmp = registry.new_version_dir("embedder")
    key = run_key(base_path, [(p.query, p.passage) for p in train], config.__dict__)
    with saving("embedder", tmp):
        train_embedder(base_path, train, registry.root / ".work" / f"embedder-{key}", tmp, config, callbacks)
        after = retrieval_scores(load_for_eval(f"{TUNED_EMBEDDER_PREFIX}{number}", str(tmp)), evaluation, distractors)
        better = after["nDCG@10"] > before["nDCG@10"]
        do_activate = activate == "yes" or (activate == "auto" and better)
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
            original = None if tuned_embedder_path(index_root, base_name) else base_name
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

    from indexer.reembed import reembed_index

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
        embedder = Embedder(_resolved(target_name, target_path))
        try:
            generation = reembed_index(store, embedder, on_progress)
        except (OSError, duckdb.Error, RuntimeError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise SixfoldError(f"re-embedding the index failed ({first[:200]}); it still uses {current}") from None
    registry.use("embedder", number)
    return generation


def _resolved(name: str, path: str):
    from indexer.models import ResolvedModel

    return ResolvedModel(name, path)
