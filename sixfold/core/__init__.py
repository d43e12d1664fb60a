"""The kernel every room shares: the user-facing error, the model catalogue, device choice, configuration and the
one cached model loader. It imports nothing else of sixfold, so indexer, retriever, reader and tuner may all use it."""
