"""Cross-encoder reranking of the top candidates (sentence-transformers' CrossEncoder)."""

from __future__ import annotations

import numpy as np

from sixfold.core.loading import load_model, quiet_loading
from sixfold.core.models import ResolvedModel


class Reranker:
    def __init__(self, name: str, path: str, device: str) -> None:
        from sentence_transformers import CrossEncoder

        self.name = name
        with quiet_loading("reranker model", name, "sentence_transformers"):
            self.model = CrossEncoder(path, device=device, local_files_only=True)

    @classmethod
    def from_model(cls, model: ResolvedModel, device: str) -> Reranker:
        return cls(model.name, model.path, device)

    def score(self, query: str, texts: list[str], batch_size: int = 32) -> np.ndarray:
        if not texts:
            return np.zeros(0, dtype=np.float32)
        scores = self.model.predict([(query, t) for t in texts], batch_size=batch_size, show_progress_bar=False)
        return np.asarray(scores, dtype=np.float32).reshape(len(texts), -1)[:, -1]


def load_reranker(spec: str) -> Reranker:
    """A cross-encoder by name or folder, loaded once per process."""
    return load_model("reranker", spec, Reranker.from_model)
