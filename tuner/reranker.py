"""`sixfold tune reranker`: train a cross-encoder on an index's own candidates and measure it before and after.

- Training data: queries with their relevant documents (BEIR qrels, as file stems of the indexed corpus) or with
  given positive passages (a pairs file, read by ``sixfold.tuner.data``). Hard negatives are mined from the index's own
  hybrid results, found with the index's own embedder (a tuned one too): the passages the reranker will actually
  have to sort.
- Model: sentence-transformers' ``CrossEncoder`` started from the packaged MiniLM encoder (a BertModel) with a
  fresh one-logit head, trained by ``CrossEncoderTrainer`` with ``BinaryCrossEntropyLoss`` (positives weighted by
  the number of negatives per positive); seeds fixed; CUDA + mixed precision when torch sees a GPU.
- Before / after: nDCG@10 (ir-measures) of hybrid search vs hybrid + the new reranker on held-out queries.
  The version is saved in the index's model registry and becomes active when it is better there (or on request);
  ``search`` / ``ask`` / ``eval --mode hybrid+rerank`` then use it by default.
"""

from __future__ import annotations

import random
import re
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from sixfold.core.device import choose_device
from sixfold.core.errors import SixfoldError
from sixfold.core.loading import quiet, quiet_loading
from sixfold.core.models import DEFAULT_EMBEDDER, resolve_model
from sixfold.indexer.embedding import Embedder, load_index_embedder
from sixfold.indexer.store import IndexStore, Snapshot
from sixfold.retriever.rerank import Reranker
from sixfold.retriever.search import search
from sixfold.retriever.types import Hit
from sixfold.tuner.data import RerankQuery
from sixfold.tuner.training import check_activate, latest_checkpoint, quiet_trainer, run_key, should_activate, trainer_settings
from sixfold.tuner.versions import Registry, TuneOutcome


@dataclass
class RerankerTrainConfig:
    epochs: float = 1.0
    learning_rate: float = 5e-5
    batch_size: int = 16
    max_length: int = 256
    negatives: int = 4  # mined hard negatives per query
    mine_depth: int = 30  # hybrid candidates negatives are drawn from
    rerank_depth: int = 50  # candidates reranked in the before/after eval
    max_steps: int = -1
    seed: int = 42
    save_steps: int = 100  # a checkpoint every N steps: what a killed run resumes from


@dataclass
class RerankerTuneResult(TuneOutcome):
    train_queries: int
    eval_queries: int
    train_pairs: int
    seconds: float
    notes: list[str] = field(default_factory=list)


def _words(text: str) -> set[str]:
    return set(re.findall(r"\w+", text.lower()))


def is_relevant(hit: Hit, query: RerankQuery) -> bool:
    """A hit is relevant when its file is one of the query's relevant files, or it shares most of its words with a
    given positive passage (a chunk of it, or a passage that holds the chunk)."""
    if Path(hit.path).stem in query.relevant:
        return True
    words = _words(hit.text)
    for positive in query.positives:
        other = _words(positive)
        if words and other and len(words & other) >= 0.6 * min(len(words), len(other)):
            return True
    return False


# ---- mining -------------------------------------------------------------------------------------
def _first_chunks(snapshot: Snapshot) -> dict[str, str]:
    ids = snapshot.filter_ids("chunk_index = 0").tolist()
    return {Path(row["path"]).stem: row["text"] for row in snapshot.chunks(ids).values()}


def mine_pairs(
    snapshot: Snapshot, embedder: Embedder, queries: list[RerankQuery], config: RerankerTrainConfig, progress=None
) -> tuple[list[tuple[str, str, float]], int]:
    """(query, passage, label) rows: the best-ranked chunk of each relevant file (or the given positives) and
    ``config.negatives`` passages sampled from the top ``mine_depth`` hybrid hits that are not relevant.
    Returns the rows and the number of queries skipped for lack of a positive passage in the index."""
    rng = random.Random(config.seed)
    first = None
    rows: list[tuple[str, str, float]] = []
    skipped = 0
    for number, q in enumerate(queries, start=1):
        hits = search(snapshot, q.query, embedder.encode([q.query])[0], config.mine_depth, "hybrid")
        positives = list(q.positives)
        seen: set[str] = set()
        for hit in hits:
            stem = Path(hit.path).stem
            if stem in q.relevant and stem not in seen:
                seen.add(stem)
                positives.append(hit.text)
        missing = [stem for stem in sorted(q.relevant - seen)]
        if missing:
            first = first if first is not None else _first_chunks(snapshot)
            positives += [first[stem] for stem in missing if stem in first]
        if not positives:
            skipped += 1
            continue
        negatives = [h.text for h in hits if not is_relevant(h, q)]
        for text in dict.fromkeys(positives):
            rows.append((q.query, text, 1.0))
        for text in rng.sample(negatives, min(config.negatives, len(negatives))):
            rows.append((q.query, text, 0.0))
        if progress:
            progress(number, len(queries))
    return rows, skipped


# ---- scoring ------------------------------------------------------------------------------------
def evaluate(
    snapshot: Snapshot,
    embedder: Embedder,
    queries: list[RerankQuery],
    reranker: Reranker | None,
    rerank_depth: int = 50,
) -> dict[str, float]:
    """nDCG@10 and MRR@10 (ir-measures) of hybrid search, reranked when a reranker is given. Hits are pooled to
    files when queries name relevant files, else judged per chunk against the given positives."""
    import ir_measures
    from ir_measures import RR, nDCG

    run, qrels = [], []
    for number, q in enumerate(queries):
        qid = str(number)
        hits = search(
            snapshot, q.query, embedder.encode([q.query])[0], 100, "hybrid", reranker=reranker, rerank_depth=rerank_depth
        )
        ranked: dict[str, float] = {}
        for hit in hits:
            key = Path(hit.path).stem if q.relevant else str(hit.chunk_id)
            if key not in ranked:
                ranked[key] = float(len(hits) - len(ranked))
                if not q.relevant and is_relevant(hit, q):
                    qrels.append(ir_measures.Qrel(qid, key, 1))
        qrels += [ir_measures.Qrel(qid, stem, 1) for stem in q.relevant]
        run += [ir_measures.ScoredDoc(qid, key, score) for key, score in ranked.items()]
    if not qrels:
        return {"nDCG@10": 0.0, "MRR@10": 0.0}
    scores = ir_measures.calc_aggregate([nDCG @ 10, RR @ 10], qrels, run)
    return {"nDCG@10": float(scores[nDCG @ 10]), "MRR@10": float(scores[RR @ 10])}


# ---- training -----------------------------------------------------------------------------------
def train_reranker(
    rows: list[tuple[str, str, float]],
    base: str,
    out_dir: Path,
    config: RerankerTrainConfig,
    callbacks: list | None = None,
    work_dir: Path | None = None,
) -> None:
    """Fine-tune a one-logit cross-encoder on labeled (query, passage) rows and save it to ``out_dir``.

    Checkpoints go to ``work_dir`` (removed once the model is saved), so a killed run given the same folder resumes
    from its last one; without a ``work_dir`` nothing is checkpointed."""
    import torch
    from datasets import Dataset
    from sentence_transformers.cross_encoder import CrossEncoder, CrossEncoderTrainer, CrossEncoderTrainingArguments
    from sentence_transformers.cross_encoder.losses import BinaryCrossEntropyLoss
    from transformers import set_seed

    set_seed(config.seed)
    device = choose_device()
    with quiet_loading("reranker model", base, "sentence_transformers"):
        model = CrossEncoder(
            base,
            num_labels=1,
            max_length=config.max_length,
            device=device,
            local_files_only=True,
            model_kwargs={"dtype": torch.float32},  # fp32 master weights (tuner/training.py)
        )
    positives = sum(1 for r in rows if r[2] > 0)
    loss = BinaryCrossEntropyLoss(model, pos_weight=torch.tensor(max(1.0, (len(rows) - positives) / max(positives, 1))))
    dataset = Dataset.from_dict(
        {"query": [r[0] for r in rows], "passage": [r[1] for r in rows], "label": [r[2] for r in rows]}
    ).shuffle(seed=config.seed)
    with tempfile.TemporaryDirectory() as scratch:
        output = Path(work_dir) if work_dir else Path(scratch)
        args = CrossEncoderTrainingArguments(
            output_dir=str(output),
            num_train_epochs=config.epochs,
            max_steps=config.max_steps,
            per_device_train_batch_size=config.batch_size,
            learning_rate=config.learning_rate,
            warmup_ratio=0.1,
            seed=config.seed,
            data_seed=config.seed,
            save_strategy="steps" if work_dir else "no",
            save_steps=config.save_steps,
            save_total_limit=1,
            logging_steps=10,
            **trainer_settings(device),
        )
        trainer = CrossEncoderTrainer(model=model, args=args, train_dataset=dataset, loss=loss, callbacks=callbacks or [])
        quiet_trainer(trainer)
        with quiet("sentence_transformers"):
            trainer.train(resume_from_checkpoint=latest_checkpoint(output) if work_dir else None)
    model.save_pretrained(str(out_dir))
    if work_dir:
        shutil.rmtree(work_dir, ignore_errors=True)


def tune_reranker(
    index_root: str | Path,
    train: list[RerankQuery],
    dev: list[RerankQuery],
    *,
    base: str | None = None,
    config: RerankerTrainConfig | None = None,
    activate: str = "auto",
    callbacks: list | None = None,
    say: Callable[[str], None] | None = None,
) -> RerankerTuneResult:
    """Mine, score hybrid on ``dev``, train, score hybrid + the new reranker, save a ``reranker`` version."""
    config = config or RerankerTrainConfig()
    say = say or (lambda message: None)
    check_activate(activate)
    if not train:
        raise SixfoldError("no training queries")
    if not dev:
        raise SixfoldError("no held-out queries to measure the reranker on")
    store = IndexStore(index_root)
    store.read_pointer()
    snapshot = store.open()
    started = time.perf_counter()
    try:
        embedder = load_index_embedder(store.root)
        base_path = resolve_model(base or DEFAULT_EMBEDDER, role="reranker").path
        rows, skipped = mine_pairs(snapshot, embedder, train, config)
        notes = [f"{skipped} training queries have no relevant passage in the index and were skipped"] if skipped else []
        if not rows:
            raise SixfoldError("no training pairs: none of the training queries' relevant documents is in the index")
        say(f"mined {len(rows)} pairs ({sum(r[2] > 0 for r in rows)} positive) from {len(train)} queries")
        before = evaluate(snapshot, embedder, dev, None, config.rerank_depth)
        say(f"hybrid on {len(dev)} held-out queries: nDCG@10 {before['nDCG@10']:.4f}")
        registry = Registry(store.root)
        number, tmp = registry.new_version_dir("reranker")
        try:
            work = registry.root / ".work" / f"reranker-{run_key(base_path, rows, config.__dict__)}"
            train_reranker(rows, base_path, tmp, config, callbacks, work_dir=work)
            reranker = Reranker(f"reranker@{number}", str(tmp), choose_device())
            after = evaluate(snapshot, embedder, dev, reranker, config.rerank_depth)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        activated = should_activate(activate, RerankerTuneResult.better(before, after))
        base_name = base or f"{DEFAULT_EMBEDDER} (encoder, new head)"
        info = {
            "base": base_name,
            "eval": {"nDCG@10": after["nDCG@10"], "MRR@10": after["MRR@10"], "hybrid nDCG@10": before["nDCG@10"]},
            "train_queries": len(train),
            "train_pairs": len(rows),
            "eval_queries": len(dev),
            "config": config.__dict__,
        }
        path = registry.add("reranker", number, tmp, info, activated)
    finally:
        snapshot.close()
    return RerankerTuneResult(
        "reranker", number, str(path), base_name, before, after, activated, len(train), len(dev), len(rows),
        time.perf_counter() - started, notes,
    )  # fmt: skip
