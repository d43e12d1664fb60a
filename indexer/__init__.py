"""Indexing: documents on disk -> chunks -> vectors, stored atomically in an index directory."""

from sixfold.core.errors import SixfoldError

__all__ = ["SixfoldError"]
