"""The HTTP server: OpenAI-compatible endpoints and a search page over one index (FastAPI; ``sixfold serve``).

Modules: ``app`` (``create_app``, ``serve``), one router per API family (``openai``: today's API; ``chat``: chat
completions; ``legacy``: the 2021 search, classifications and answers; ``files``: files and fine-tunes, with
``uploads`` checking and reading the files and ``jobs`` running the fine-tunes), ``service`` (the
Engine, its locks, the embedder pool), ``schemas`` (request bodies), ``limits`` (work and time a request may take),
``errors`` (OpenAI's error shape), ``middleware`` (the API-key gate and the body cap). Every endpoint calls the
Engine (through the Service); this package holds routing, auth, shapes and errors only.

- Today's shapes: ``POST /v1/embeddings``, ``POST /v1/completions`` and ``POST /v1/chat/completions`` (both also
  streamed; the chat model ``sixfold-answers`` answers from the index with its sources), ``GET /v1/models``.
- OpenAI's 2021 shapes: ``POST /v1/search`` (and ``/v1/engines/{engine}/search``), ``/v1/classifications``,
  ``/v1/answers`` (documents inline, the index, or ``file``: an uploaded JSONL file of purpose ``search``,
  ``answers`` or ``classifications``), ``/v1/files`` + ``/v1/fine-tunes`` (the tuner as a background job).
- ``GET /`` the search page, ``GET /v1/status`` the index status, ``GET /openapi.json`` the schema.

Safety: the API key is checked before a request's body is read (401), bodies are capped (413), every body is
validated (pydantic; errors are 400 in OpenAI's ``{"error": {...}}`` shape), the work one request may ask for is
bounded (``Limits``: prompts, prompts x n x max_tokens, prompt length, inputs, documents, examples; a 400 naming the
limit), each request has a time limit (``--request-timeout``; past it a 504 and the model stops at its next token),
and no parameter names a path: documents and examples come inline, ``file`` is the index itself (``"index"``) or
the id of an upload stored inside the index folder (as are training files), and ``/v1/status`` names the index, not its path.

Requests run in threads; the parts that share state (the index snapshot, DuckDB, FAISS, tantivy) run under one lock,
the language model under another, and texts are embedded outside both by a small pool of embedder copies (each with
its own tokenizer), so a re-index by another process is picked up between requests and a request always reads one
whole generation.
"""

from __future__ import annotations

from typing import Any

__all__ = ["Limits", "create_app", "listen", "serve"]


def __getattr__(name: str) -> Any:
    """``from sixfold.http import create_app`` without loading the routers (and the Engine) for ``Limits``."""
    if name == "Limits":
        from sixfold.http.limits import Limits

        return Limits
    if name in ("create_app", "listen", "serve"):
        from sixfold.http import app

        return getattr(app, name)
    raise AttributeError(f"module 'sixfold.http' has no attribute '{name}'")
