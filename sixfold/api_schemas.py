"""Request bodies of the HTTP API (pydantic): today's OpenAI shapes and the 2021 legacy ones.

Fields the OpenAI clients may send but sixfold does not use are declared (so they are type-checked) and ignored;
fields that would change the result in a way sixfold cannot honour (``logprobs``, ``suffix``, token arrays) are
refused with a 400 by the server. Unknown fields are ignored, as OpenAI did.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, fields
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictStr

from sixfold.core.errors import SixfoldError

MAX_TEXT = 100_000  # characters in one text: a query, an embeddings input, a document, an example (the body cap bounds the total)
INT64 = 2**63  # seeds outside a signed 64-bit integer are refused (torch takes no more)

Text = Annotated[StrictStr, Field(max_length=MAX_TEXT)]


def _text():
    return Field(min_length=1, max_length=MAX_TEXT)


@dataclass(frozen=True)
class Limits:
    """How much work one request may ask for; every bound is a 400 naming the limit and the value asked for.

    Each comes from ``sixfold serve`` flags, else the environment (``SIXFOLD_<NAME>``, e.g.
    ``SIXFOLD_MAX_COMPLETION_TOKENS``), else the default here. ``request_timeout`` (seconds) bounds the time a
    request may take, waits for the model included; past it the answer is a 504 and generation stops at the next token.
    """

    max_prompts: int = 16  # prompts per /v1/completions request
    max_completion_tokens: int = 2048  # prompts x n x max_tokens per /v1/completions request
    max_prompt_chars: int = 16_000  # characters in one prompt (about 4k tokens; the model's window is checked too)
    max_inputs: int = 2048  # texts per /v1/embeddings request (OpenAI's limit)
    max_documents: int = 200  # inline documents per /v1/search or /v1/answers request (OpenAI's 2021 limit)
    max_examples: int = 1000  # labeled examples per /v1/classifications request
    request_timeout: float = 120.0

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None, **given: float | None) -> Limits:
        """Limits from ``given`` (None: not given), else ``SIXFOLD_<NAME>`` in ``environ``, else the defaults."""
        environ = os.environ if environ is None else environ
        values: dict = {}
        for spec in fields(cls):
            kind = float if spec.name == "request_timeout" else int
            value, source = given.get(spec.name), f"--{spec.name.replace('_', '-')}"
            if value is None and f"SIXFOLD_{spec.name.upper()}" in environ:
                source = f"SIXFOLD_{spec.name.upper()}"
                try:
                    value = kind(environ[source])
                except ValueError:
                    raise SixfoldError(f"{source} must be a positive number, got '{environ[source]}'") from None
            if value is None:
                continue
            if not 0 < value < math.inf:  # also refuses NaN
                raise SixfoldError(f"{source} must be positive (and finite), got {value}")
            values[spec.name] = kind(value)
        return cls(**values)


class _Request(BaseModel):
    model_config = ConfigDict(extra="ignore", protected_namespaces=())


class EmbeddingRequest(_Request):
    model: StrictStr
    input: Text | list[Text] | list[int] | list[list[int]]
    encoding_format: Literal["float", "base64"] | None = "float"
    dimensions: int | None = Field(None, ge=1, le=65536)
    user: str | None = None


class CompletionRequest(_Request):
    model: StrictStr
    prompt: StrictStr | list[StrictStr] | list[int] | list[list[int]]
    max_tokens: int | None = Field(16, ge=1, le=4096)
    temperature: float | None = Field(1.0, ge=0.0, le=2.0)
    top_p: float | None = Field(1.0, gt=0.0, le=1.0)
    n: int | None = Field(1, ge=1, le=4)
    stream: bool | None = False
    stop: StrictStr | list[StrictStr] | None = None
    seed: int | None = Field(None, ge=-INT64, lt=INT64)
    echo: bool | None = False
    logprobs: int | None = Field(None, ge=0, le=5)
    suffix: str | None = None
    best_of: int | None = Field(None, ge=1, le=1)
    presence_penalty: float | None = None
    frequency_penalty: float | None = None
    logit_bias: dict[str, float] | None = None
    stream_options: dict | None = None
    user: str | None = None


class SearchRequest(_Request):
    """2021 ``/v1/search`` (or ``/v1/engines/{engine}/search``): rank ``documents`` or the index (``file``)."""

    model: StrictStr | None = None
    query: StrictStr = _text()
    documents: list[Text] | None = None
    file: StrictStr | None = None
    max_rerank: int = Field(200, ge=1, le=1000)
    return_metadata: bool = False
    user: str | None = None
    # sixfold's own: how to rank the index (hybrid = dense + BM25 fused); default: the index's own mode
    # (hybrid, or bm25 for a language the embedder does not read)
    mode: Literal["hybrid", "dense", "bm25"] | None = None


class ClassificationRequest(_Request):
    """2021 ``/v1/classifications``: label ``query`` from labeled ``examples`` ([[text, label], ...])."""

    model: StrictStr | None = None
    query: StrictStr = _text()
    examples: list[tuple[Text, Text]] | None = None
    file: StrictStr | None = None
    labels: list[Text] | None = None
    search_model: StrictStr | None = None
    max_examples: int = Field(200, ge=1, le=10_000)
    temperature: float | None = Field(None, ge=0.0, le=2.0)
    logprobs: int | None = Field(None, ge=0, le=5)
    return_prompt: bool = False
    return_metadata: bool = False
    expand: list[str] | None = None
    logit_bias: dict[str, float] | None = None
    user: str | None = None


class AnswerRequest(_Request):
    """2021 ``/v1/answers``: answer ``question`` from ``documents`` or the index (``file``), citing them.

    ``examples`` / ``examples_context`` are type-checked and accepted for compatibility; sixfold's reader uses its
    own prompt (extractive span reading or the local LM), not few-shot examples.
    """

    model: StrictStr | None = None
    question: StrictStr = _text()
    examples: list[tuple[Text, Text]] | None = Field(None, max_length=200)
    examples_context: Text | None = None
    documents: list[Text] | None = None
    file: StrictStr | None = None
    search_model: StrictStr | None = None
    max_rerank: int = Field(200, ge=1, le=1000)
    temperature: float | None = Field(None, ge=0.0, le=2.0)
    max_tokens: int | None = Field(None, ge=1, le=4096)  # accepted for compatibility; the reader writes at most 64 tokens
    stop: StrictStr | list[StrictStr] | None = None
    n: int | None = Field(1, ge=1, le=1)
    logprobs: int | None = Field(None, ge=0, le=5)
    return_metadata: bool = False
    return_prompt: bool = False
    expand: list[str] | None = None
    logit_bias: dict[str, float] | None = None
    user: str | None = None
    # sixfold's own
    mode: Literal["auto", "extractive", "generative"] = "auto"
    k: int = Field(5, ge=1, le=20)


class FineTuneRequest(_Request):
    """2021 ``/v1/fine-tunes``: train a reader version from uploaded QA files (ids from ``/v1/files``)."""

    training_file: StrictStr
    validation_file: StrictStr | None = None
    model: StrictStr | None = "reader"
    n_epochs: float | None = Field(None, gt=0, le=50)
    batch_size: int | None = Field(None, ge=1, le=256)
    learning_rate_multiplier: float | None = Field(None, gt=0, le=100)
    prompt_loss_weight: float | None = None
    compute_classification_metrics: bool | None = None
    suffix: str | None = Field(None, max_length=40)
    # sixfold's own
    max_steps: int | None = Field(None, ge=1, le=1_000_000)
    eval_limit: int = Field(500, ge=1, le=1_000_000)
    activate: Literal["auto", "yes", "no"] = "auto"
