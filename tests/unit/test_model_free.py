"""The unit layer stays fast: what it exercises imports neither torch nor transformers (nor loads a model)."""

from __future__ import annotations

import subprocess
import sys

MODULES = [
    "sixfold.core.config", "sixfold.core.models", "sixfold.core.loading", "sixfold.indexer.loaders",
    "sixfold.indexer.chunking", "sixfold.indexer.store", "sixfold.retriever.search", "sixfold.tuner.versions", "tokenizers",
]  # fmt: skip
HEAVY = ["torch", "transformers", "sentence_transformers"]


def test_the_unit_layer_imports_no_model_library():
    code = f"import sys\nfor m in {MODULES!r}: __import__(m)\nprint([m for m in {HEAVY!r} if m in sys.modules])"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]", f"imported by the model-free modules: {result.stdout.strip()}"
