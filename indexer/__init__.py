"""Indexing: documents on disk -> chunks -> vectors, stored atomically in an index directory."""

from indexer.errors import SixfoldError

__all__ = ["SixfoldError"]
