"""Cross-encoder reranking of the top candidates (sentence-transformers' CrossEncoder)."""

from __future__ import annotations

import logging
import warnings
from functools import lru_cache

import numpy as np

from indexer.embedding import choose_device
from indexer.errors import SixfoldError
from indexer.models import resolve_model


class Reranker:
    def __init__(self, name: str, path: str, device: str) -> None:
        from sentence_transformers import CrossEncoder

        self.name = name
        logging.getLogger("sentence_transformers").setLevel(logging.ERROR)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                self.model = CrossEncoder(path, device=device, local_files_only=True)
        except Exception as exc:
            raise SixfoldError(f"cannot load reranker model {name}: {type(exc).__name__}: {exc}") from None

    def score(self, query: str, texts: list[str], batch_size: int = 32) -> np.ndarray:
        if not texts:
            return np.zeros(0, dtype=np.float32)
        scores = self.model.predict([(query, t) for t in texts], batch_size=batch_size, show_progress_bar=False)
        return np.asarray(scores, dtype=np.float32).reshape(len(texts), -1)[:, -1]


@lru_cache(maxsize=2)
def _cached(name: str, path: str, device: str) -> Reranker:
    return Reranker(name, path, device)


def load_reranker(spec: str) -> Reranker:
    model = resolve_model(spec, role="reranker")
    return _cached(model.name, model.path, choose_device())
