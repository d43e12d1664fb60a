"""Tuning: train new versions of the index's models on your data, score them before and after on held-out data, and
keep them in the index's model registry (``versions``); one module per role (``reader``, ``embedder``, ``reranker``,
``domain``), what their trainers share in ``training``, the training files they read in ``data``."""
