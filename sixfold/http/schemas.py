"""Request bodies of the HTTP API (pydantic): today's OpenAI shapes and the 2021 legacy ones.

Fields the OpenAI clients may send but sixfold does not use are declared (so they are type-checked) and ignored;
fields that would change the result in a way sixfold cannot honour (``logprobs``, ``suffix``, token arrays) are
refused with a 400 by the routers. Unknown fields are ignored, as OpenAI did. The work a request may ask for is
bounded in ``sixfold.http.limits``. Below the bodies, the checks of a field that pydantic cannot express.
"""

from __future__ import annotations

import secrets
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictStr

from sixfold.http.errors import ApiError

MAX_TEXT = 100_000  # characters in one text: a query, an embeddings input, a document, an example (the body cap bounds the total)
INT64 = 2**63  # seeds outside a signed 64-bit integer are refused (torch takes no more)
INDEX_FILE = "index"  # the value of ``file`` that means "the server's index"

Text = Annotated[StrictStr, Field(max_length=MAX_TEXT)]


def _text():
    return Field(min_length=1, max_length=MAX_TEXT)


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


Expand = Literal["completion", "file"]


class SearchRequest(_Request):
    """2021 ``/v1/search`` (or ``/v1/engines/{engine}/search``): rank ``documents``, an uploaded ``search`` file
    (``file``: its id; a keyword pre-search picks ``max_rerank`` rows, which are reranked) or the index
    (``file: "index"``, or neither)."""

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
    """2021 ``/v1/classifications``: label ``query`` from labeled ``examples`` ([[text, label], ...]) or an uploaded
    ``classifications`` file (``file``; a keyword pre-search picks ``max_examples`` of its examples)."""

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
    expand: list[Expand] | None = None
    logit_bias: dict[str, float] | None = None
    user: str | None = None


class AnswerRequest(_Request):
    """2021 ``/v1/answers``: answer ``question`` from ``documents``, an uploaded ``answers`` file (``file``: its id;
    ``max_rerank`` rows picked by a keyword pre-search are reranked and the best ``k`` read) or the index
    (``file: "index"``, or neither), citing them.

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
    expand: list[Expand] | None = None
    logit_bias: dict[str, float] | None = None
    user: str | None = None
    # sixfold's own
    mode: Literal["auto", "extractive", "generative"] = "auto"
    k: int = Field(5, ge=1, le=20)


class FineTuneRequest(_Request):
    """2021 ``/v1/fine-tunes``: train from uploaded files (ids from ``/v1/files``): QA pairs train a reader version,
    ``{prompt, completion}`` or chat rows a generator version."""

    training_file: StrictStr
    validation_file: StrictStr | None = None
    model: StrictStr | None = None  # None: the reader for QA pairs, the server's language model for the others
    n_epochs: float | None = Field(None, gt=0, le=50)
    batch_size: int | None = Field(None, ge=1, le=256)
    learning_rate_multiplier: float | None = Field(None, gt=0, le=100)
    prompt_loss_weight: float | None = None
    compute_classification_metrics: bool | None = None
    suffix: str | None = Field(None, max_length=64)
    seed: int | None = Field(None, ge=0, le=2**31 - 1)
    # sixfold's own
    max_steps: int | None = Field(None, ge=1, le=1_000_000)
    eval_limit: int = Field(500, ge=1, le=1_000_000)
    activate: Literal["auto", "yes", "no"] = "auto"


Auto = Literal["auto"]


class Hyperparameters(_Request):
    n_epochs: Auto | float | None = Field(None)
    batch_size: Auto | int | None = Field(None)
    learning_rate_multiplier: Auto | float | None = Field(None)


class FineTuningJobRequest(_Request):
    """Current ``/v1/fine_tuning/jobs``: the same jobs as ``FineTuneRequest``, with the hyperparameters in
    ``hyperparameters`` (or ``method.supervised.hyperparameters``); "auto" means sixfold's default."""

    model: StrictStr
    training_file: StrictStr
    validation_file: StrictStr | None = None
    hyperparameters: Hyperparameters | None = None
    method: dict | None = None
    suffix: str | None = Field(None, max_length=64)
    seed: int | None = Field(None, ge=0, le=2**31 - 1)
    # sixfold's own (extra_body)
    max_steps: int | None = Field(None, ge=1, le=1_000_000)
    eval_limit: int = Field(500, ge=1, le=1_000_000)
    activate: Literal["auto", "yes", "no"] = "auto"

    def hyper(self) -> dict:
        """n_epochs, batch_size and learning_rate_multiplier, None where "auto" or absent; checked like the 2021 ones."""
        given = self.hyperparameters
        if given is None and isinstance(self.method, dict):
            inner = (self.method.get(self.method.get("type") or "supervised") or {}).get("hyperparameters")
            given = Hyperparameters(**inner) if isinstance(inner, dict) else None
        out: dict = {}
        bounds = {"n_epochs": (0, 50), "batch_size": (1, 256), "learning_rate_multiplier": (0, 100)}
        for name, (low, high) in bounds.items():
            value = getattr(given, name, None) if given else None
            if value == "auto" or value is None:
                out[name] = None
                continue
            if not low < value <= high and not (name == "batch_size" and value == low):
                raise ApiError(400, f"hyperparameters.{name} must be in ({low}, {high}], got {value}", param=name)
            out[name] = value
        return out


# ---- checks pydantic cannot express ----------------------------------------------------------------
def texts_of(value: str | list, param: str) -> list[str]:
    """A text-or-texts field as a list of texts; token arrays are refused (sixfold's models have their own tokenizers)."""
    texts = [value] if isinstance(value, str) else list(value)
    if not texts:
        raise ApiError(400, f"{param} is empty", param=param)
    if not all(isinstance(t, str) for t in texts):
        raise ApiError(
            400, f"token arrays are not supported in {param}: sixfold's models use their own tokenizers; send text", param=param
        )
    return texts


def uploaded_file(file: str | None) -> str | None:
    """The id of the uploaded file a 2021 call names in ``file``; None for none or the index (``"index"``). Anything
    else that is not an id (``file-...``) is refused: paths are never read."""
    if file is None or file == INDEX_FILE:
        return None
    if not file.startswith("file-"):
        raise ApiError(
            400,
            f"file must be '{INDEX_FILE}' (the server's index) or the id of an uploaded file (file-...); sixfold reads "
            "no files named in a request: upload it with POST /v1/files or send the documents inline",
            param="file",
        )
    return file


def inline_documents(documents: list[str] | None, file: str | None) -> list[str] | None:
    """The documents a 2021 call reads inline, checked; None when it reads a file or the index."""
    if documents is not None and file is not None:
        raise ApiError(400, "give either documents or file, not both", param="file")
    uploaded_file(file)
    if documents is None:
        return None
    if not documents:
        raise ApiError(400, "documents is empty", param="documents")
    for i, doc in enumerate(documents):
        if not doc.strip():
            raise ApiError(400, f"documents[{i}] is empty", param=f"documents[{i}]")
    return documents


def new_id(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(12)}"
