"""sixfold: local retrieval-augmented search and QA over your own documents."""

from indexer.errors import SixfoldError
from indexer.pipeline import IndexReport
from retriever.types import Hit
from sixfold.engine import Engine, IndexStatus

__all__ = ["Engine", "Hit", "IndexReport", "IndexStatus", "SixfoldError"]
__version__ = "0.1.0"
