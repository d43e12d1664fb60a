"""Fine-tune the embedding model on (query, passage) pairs with sentence-transformers' own trainer, and score it.

Training: ``SentenceTransformerTrainer`` with ``MultipleNegativesRankingLoss`` (the other passages of a batch are
the negatives; the no-duplicates sampler keeps a passage from being its own negative). Seeds are fixed, checkpoints
are written to a work folder named after the run's inputs so a killed run resumes, CUDA + fp16 when present.

Scoring: nDCG@10 and Recall@10 (ir-measures) of each eval query against a candidate pool of all eval passages
(plus, optionally, extra distractor texts such as the index's chunks), by cosine similarity.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from indexer.embedding import Embedder
from indexer.models import ResolvedModel
from tuner.pairs import Pair


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


def run_key(*parts: object) -> str:
    """A short hash of a run's inputs: the checkpoint folder of the same run is found again after a kill."""
    digest = hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()
    return digest[:12]


def latest_checkpoint(work_dir: Path) -> str | None:
    found = sorted(work_dir.glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[1])) if work_dir.is_dir() else []
    return str(found[-1]) if found else None


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

    from tuner.precision import trainer_settings

    config = config or EmbedderTrainConfig()
    set_seed(config.seed)
    work_dir, save_to = Path(work_dir), Path(save_to)
    cuda = torch.cuda.is_available()
    logging.getLogger("sentence_transformers").setLevel(logging.ERROR)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
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
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer.train(resume_from_checkpoint=latest_checkpoint(work_dir))
    model.save(str(save_to), create_model_card=False)
    shutil.rmtree(work_dir, ignore_errors=True)
    return save_to


def quiet_trainer(trainer) -> None:
    """Drop the callback that prints every log dict to stdout (the progress bar shows the loss)."""
    from transformers.trainer_callback import PrinterCallback

    trainer.remove_callback(PrinterCallback)


def _key(text: str) -> str:
    return " ".join(text.lower().split())


def retrieval_scores(embedder: Embedder, pairs: list[Pair], distractors: list[str] | None = None) -> dict[str, float]:
    """nDCG@10 and Recall@10 (0-1) of the pairs' queries over all their passages plus ``distractors``."""
    import ir_measures
    from ir_measures import R, nDCG

    docs: dict[str, int] = {}
    for text in [p.passage for p in pairs] + list(distractors or []):
        docs.setdefault(_key(text), len(docs))
    texts: dict[int, str] = {}
    for text in [p.passage for p in pairs] + list(distractors or []):
        texts.setdefault(docs[_key(text)], text)
    queries: dict[str, int] = {}
    query_text: list[str] = []
    qrels = []
    for p in pairs:
        if _key(p.query) not in queries:
            queries[_key(p.query)] = len(queries)
            query_text.append(p.query)
        qrels.append(ir_measures.Qrel(f"q{queries[_key(p.query)]}", f"d{docs[_key(p.passage)]}", 1))
    doc_vectors = embedder.encode([texts[i] for i in range(len(texts))])
    query_vectors = embedder.encode(query_text)
    scores = query_vectors @ doc_vectors.T
    top = np.argsort(-scores, axis=1)[:, :100]
    run = [ir_measures.ScoredDoc(f"q{q}", f"d{d}", float(scores[q, d])) for q in range(len(query_text)) for d in top[q].tolist()]
    result = ir_measures.calc_aggregate([nDCG @ 10, R @ 10], qrels, run)
    return {"nDCG@10": float(result[nDCG @ 10]), "Recall@10": float(result[R @ 10])}


def load_for_eval(name: str, path: str) -> Embedder:
    """A fresh (uncached) embedder, so a just-trained folder is read as saved."""
    return Embedder(ResolvedModel(name, path))


def config_dict(config: EmbedderTrainConfig) -> dict:
    return asdict(config)
