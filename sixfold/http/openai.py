"""Today's OpenAI API: ``POST /v1/embeddings``, ``POST /v1/completions`` (also streamed as server-sent events),
``GET /v1/models``, and sixfold's ``GET /v1/status``. Each handler validates, calls the Service (the Engine under
its locks) and shapes the answer as OpenAI does."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse

from sixfold.http.errors import ApiError
from sixfold.http.limits import DeadlineDep, Limits, LimitsDep, at_most, check_completion_work
from sixfold.http.schemas import CompletionRequest, EmbeddingRequest, new_id, texts_of
from sixfold.http.service import ServiceDep
from sixfold.http.streaming import stream_from_thread

router = APIRouter(prefix="/v1")  # the API key is checked by ApiKeyGate, before the body is read


# ---- status and models -----------------------------------------------------------------------
@router.get("/status")
def status(request: Request, service: ServiceDep, deadline: DeadlineDep) -> dict:
    """What the index holds (documents, chunks, model, generation, ...); the index by its name, not its path."""
    data = service.status(deadline)
    root = data.pop("path")
    name = Path(root).name
    data = _named(data, root, name)  # e.g. a health note names the index, not where it lives
    return {**data, "name": name, "auth": request.app.state.api_key is not None}


@router.get("/models")
def list_models(service: ServiceDep) -> dict:
    return {"object": "list", "data": service.models()}


@router.get("/models/{model_id}")
def get_model(model_id: str, service: ServiceDep) -> dict:
    service.check_model(model_id)
    return next(m for m in service.models() if m["id"] == model_id)


def _named(value, root: str, name: str):
    """``value`` with the index's absolute path replaced by its name, in every string it holds."""
    if isinstance(value, str):
        return value.replace(root, name)
    if isinstance(value, list):
        return [_named(v, root, name) for v in value]
    if isinstance(value, dict):
        return {k: _named(v, root, name) for k, v in value.items()}
    return value


# ---- embeddings ----------------------------------------------------------------------------------
@router.post("/embeddings")
def embeddings(body: EmbeddingRequest, service: ServiceDep, limits: LimitsDep, deadline: DeadlineDep) -> dict:
    service.check_model(body.model, ("embedder",))
    texts = texts_of(body.input, "input")
    at_most(len(texts), limits.max_inputs, "inputs", "max_inputs", "input")
    for i, text in enumerate(texts):
        if not text.strip():
            raise ApiError(400, f"input[{i}] is empty", param="input")
    pool = service.embedders
    if body.dimensions is not None and body.dimensions != pool.dim:
        raise ApiError(400, f"{pool.name} makes {pool.dim}-d vectors; dimensions cannot change that", param="dimensions")
    vectors, tokens = service.embed(texts, deadline)
    as_base64 = body.encoding_format == "base64"
    data = [
        {
            "object": "embedding",
            "index": i,
            "embedding": base64.b64encode(v.astype("<f4").tobytes()).decode() if as_base64 else v.tolist(),
        }
        for i, v in enumerate(vectors)
    ]
    return {"object": "list", "data": data, "model": body.model, "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}


# ---- completions ---------------------------------------------------------------------------------
@router.post("/completions")
def completions(body: CompletionRequest, service: ServiceDep, limits: LimitsDep, deadline: DeadlineDep):
    service.check_model(body.model, ("completion",))
    prompts, options = _completion_jobs(body, limits, service.language_model(body.model))
    cid, created = new_id("cmpl"), int(time.time())
    if body.stream:
        events = _stream(service, prompts, options, body, deadline, _Chunks(cid, created, body.model))
        return StreamingResponse(events, media_type="text/event-stream")
    choices, completion_tokens, prompt_tokens = [], 0, {}
    for index, done in service.completions(prompts, options, deadline):
        prompt_tokens[index // (body.n or 1)] = done.prompt_tokens  # a prompt counts once, however many choices
        completion_tokens += done.completion_tokens
        text = (prompts[index] if body.echo else "") + done.text
        choices.append({"text": text, "index": index, "logprobs": None, "finish_reason": done.finish_reason})
    used = sum(prompt_tokens.values())
    usage = {"prompt_tokens": used, "completion_tokens": completion_tokens, "total_tokens": used + completion_tokens}
    return {"id": cid, "object": "text_completion", "created": created, "model": body.model, "choices": choices, "usage": usage}


def _completion_jobs(body: CompletionRequest, limits: Limits, generator: str) -> tuple[list[str], dict]:
    """The prompts to complete (each ``n`` times, in order) and the generation options; a 400 for what sixfold
    cannot do or the server's limits refuse, before any generation."""
    prompts = texts_of(body.prompt, "prompt")
    n, max_tokens = body.n or 1, body.max_tokens or 16
    check_completion_work(prompts, n, max_tokens, limits)
    if body.logprobs is not None:
        raise ApiError(400, "logprobs are not supported by sixfold", param="logprobs")
    if body.suffix:
        raise ApiError(400, "suffix (insertion) is not supported by sixfold", param="suffix")
    stop = [body.stop] if isinstance(body.stop, str) else list(body.stop or [])
    if len(stop) > 4:
        raise ApiError(400, "at most 4 stop sequences", param="stop")
    temperature = 1.0 if body.temperature is None else body.temperature
    options = dict(max_tokens=max_tokens, temperature=temperature, stop=stop, model=generator, seed=body.seed)
    return [prompt for prompt in prompts for _ in range(n)], options


class _Chunks:
    """Server-sent events in OpenAI's streamed completion shape."""

    def __init__(self, cid: str, created: int, model: str) -> None:
        self.head = {"id": cid, "object": "text_completion", "created": created, "model": model}

    def text(self, index: int, text: str, finish: str | None = None) -> str:
        choice = {"text": text, "index": index, "logprobs": None, "finish_reason": finish}
        return f"data: {json.dumps({**self.head, 'choices': [choice]})}\n\n"


def _stream(service, prompts: list[str], options: dict, body: CompletionRequest, deadline, chunks: _Chunks) -> Iterator[str]:
    """One chunk per piece of text, a last one per choice with finish_reason, then [DONE].

    Generation runs in a thread that feeds a queue. Past the deadline (or once the client stops reading)
    generation stops at its next token; the stream then ends with an error event in OpenAI's shape (code
    ``request_timeout``), since the 200 status line is already sent.
    """

    def work(put, gone) -> None:
        emit = lambda index, piece: put(chunks.text(index, piece))  # noqa: E731
        for index, done in service.completions(prompts, options, deadline, echo=bool(body.echo), on_text=emit, gone=gone):
            put(chunks.text(index, "", done.finish_reason))

    return stream_from_thread(work)
