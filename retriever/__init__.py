"""Retrieval: dense + lexical search, fused, optionally reranked, filtered by metadata."""
