"""Request bodies of the HTTP API (pydantic): today's OpenAI shapes and the 2021 legacy ones.

Fields the OpenAI clients may send but sixfold does not use are declared (so they are type-checked) and ignored;
fields that would change the result in a way sixfold cannot honour (``logprobs``, ``suffix``, token arrays) are
refused with a 400 by the server. Unknown fields are ignored, as OpenAI did.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, StrictStr

MAX_TEXT = 100_000  # characters in one text (the body limit bounds the total)
MAX_ITEMS = 2048  # texts per embeddings call (OpenAI's limit)
MAX_DOCUMENTS = 200  # inline documents per search / answers call (OpenAI's 2021 limit)
MAX_EXAMPLES = 200


def _text():
    return Field(min_length=1, max_length=MAX_TEXT)


class _Request(BaseModel):
    model_config = ConfigDict(extra="ignore", protected_namespaces=())


class EmbeddingRequest(_Request):
    model: StrictStr
    input: StrictStr | list[StrictStr] | list[int] | list[list[int]]
    encoding_format: Literal["float", "base64"] | None = "float"
    dimensions: int | None = Field(None, ge=1)
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
    seed: int | None = None
    echo: bool | None = False
    logprobs: int | None = None
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
    documents: list[StrictStr] | None = Field(None, max_length=MAX_DOCUMENTS)
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
    examples: list[tuple[StrictStr, StrictStr]] | None = Field(None, max_length=MAX_EXAMPLES * 50)
    file: StrictStr | None = None
    labels: list[StrictStr] | None = None
    search_model: StrictStr | None = None
    max_examples: int = Field(200, ge=1)
    temperature: float | None = Field(None, ge=0.0, le=2.0)
    logprobs: int | None = None
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
    examples: list[tuple[StrictStr, StrictStr]] | None = None
    examples_context: StrictStr | None = None
    documents: list[StrictStr] | None = Field(None, max_length=MAX_DOCUMENTS)
    file: StrictStr | None = None
    search_model: StrictStr | None = None
    max_rerank: int = Field(200, ge=1, le=1000)
    temperature: float | None = Field(None, ge=0.0, le=2.0)
    max_tokens: int | None = Field(None, ge=1)
    stop: StrictStr | list[StrictStr] | None = None
    n: int | None = Field(1, ge=1, le=1)
    logprobs: int | None = None
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
    max_steps: int | None = Field(None, ge=1)
    eval_limit: int = Field(500, ge=1)
    activate: Literal["auto", "yes", "no"] = "auto"
