"""The HTTP server: OpenAI-compatible endpoints and a search page over one index (FastAPI; ``sixfold serve``).

- Today's shapes: ``POST /v1/embeddings``, ``POST /v1/completions`` (also streamed), ``GET /v1/models``.
- OpenAI's 2021 shapes: ``POST /v1/search`` (and ``/v1/engines/{engine}/search``), ``/v1/classifications``,
  ``/v1/answers``, ``/v1/files`` + ``/v1/fine-tunes`` (the tuner as a background job with events).
- ``GET /`` the search page, ``GET /v1/status`` the index status, ``GET /openapi.json`` the schema.

Safety: the API key is checked before a request's body is read (401), bodies are capped (413), every body is
validated (pydantic; errors are 400 in OpenAI's ``{"error": {...}}`` shape), the work one request may ask for is
bounded (``Limits``: prompts, prompts x n x max_tokens, prompt length, inputs, documents, examples; a 400 naming the
limit), each request has a time limit (``--request-timeout``; past it a 504 and the model stops at its next token),
and no parameter names a path: documents and examples come inline, ``file`` is the index itself (``"index"``),
training files are ids of uploads stored inside the index folder, and ``/v1/status`` names the index, not its path.

Requests run in threads; the parts that share state (the index snapshot, DuckDB, FAISS, tantivy) run under one lock,
the language model under another, and texts are embedded outside both by a small pool of embedder copies (each with
its own tokenizer), so a re-index by another process is picked up between requests and a request always reads one
whole generation.
"""

from __future__ import annotations

import base64
import json
import os
import queue
import secrets
import socket
import threading
import time
from pathlib import Path

import numpy as np
from fastapi import APIRouter, Depends, FastAPI, File, Form, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, StreamingResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from sixfold.api_errors import ApiError, ApiKeyGate, BodyLimit, error_response, validation_error
from sixfold.api_schemas import (
    AnswerRequest,
    ClassificationRequest,
    CompletionRequest,
    EmbeddingRequest,
    FineTuneRequest,
    Limits,
    SearchRequest,
)
from sixfold.core.errors import SixfoldError
from sixfold.core.models import DEFAULT_GENERATOR, model_languages
from sixfold.reader.types import LabeledExample, Passage
from sixfold.retriever.search import default_mode
from sixfold.service import Deadline, Service, TimedEmbedder

STATIC = Path(__file__).parent / "static"
DEFAULT_MAX_BODY = 1 << 20  # 1 MiB for JSON requests
DEFAULT_MAX_UPLOAD = 64 << 20  # 64 MiB for POST /v1/files
INDEX_FILE = "index"  # the value of ``file`` that means "the server's index"


def _one_source(documents: list[str] | None, file: str | None) -> str:
    """'documents' or 'index': which the legacy call reads. Paths are never read."""
    if documents is not None and file is not None:
        raise ApiError(400, "give either documents or file, not both", param="file")
    if file is not None and file != INDEX_FILE:
        raise ApiError(
            400,
            f"file must be '{INDEX_FILE}' (the server's index); sixfold reads no files named in a request: "
            "send documents inline instead",
            param="file",
        )
    if documents is not None:
        if not documents:
            raise ApiError(400, "documents is empty", param="documents")
        for i, doc in enumerate(documents):
            if not doc.strip():
                raise ApiError(400, f"documents[{i}] is empty", param=f"documents[{i}]")
        return "documents"
    return "index"


def _texts(value, param: str) -> list[str]:
    texts = [value] if isinstance(value, str) else list(value)
    if not texts:
        raise ApiError(400, f"{param} is empty", param=param)
    if not all(isinstance(t, str) for t in texts):
        raise ApiError(
            400, f"token arrays are not supported in {param}: sixfold's models use their own tokenizers; send text", param=param
        )
    return texts


def _id(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(12)}"


def _setting(name: str) -> str:
    """Where a limit is set: ``max_prompts`` -> ``--max-prompts / SIXFOLD_MAX_PROMPTS``."""
    return f"--{name.replace('_', '-')} / SIXFOLD_{name.upper()}"


def _at_most(count: int, limit: int, what: str, setting: str, param: str) -> None:
    if count > limit:
        raise ApiError(
            400,
            f"at most {limit} {what} per request, got {count} (the server's limit, {_setting(setting)})",
            param=param,
            code="limit_exceeded",
        )


def _named(value, root: str, name: str):
    """``value`` with the index's absolute path replaced by its name, in every string it holds."""
    if isinstance(value, str):
        return value.replace(root, name)
    if isinstance(value, list):
        return [_named(v, root, name) for v in value]
    if isinstance(value, dict):
        return {k: _named(v, root, name) for k, v in value.items()}
    return value


def create_app(
    index_path: str | os.PathLike,
    api_key: str | None = None,
    *,
    max_body: int = DEFAULT_MAX_BODY,
    max_upload: int = DEFAULT_MAX_UPLOAD,
    generator: str = DEFAULT_GENERATOR,
    embedders: int = 2,
    warm: bool = True,
    limits: Limits | None = None,
) -> FastAPI:
    """The FastAPI app over the index at ``index_path`` (it must exist). ``api_key``: require ``Bearer KEY`` on /v1;
    ``embedders``: copies of the embedding model that embed queries in parallel; ``limits``: the work and time one
    request may take (default: ``Limits.from_env()``)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        package_version = version("sixfold")
    except PackageNotFoundError:
        package_version = "dev"
    limits = limits or Limits.from_env()  # a bad SIXFOLD_* value is one error before any model loads
    service = Service(index_path, generator, embedders)
    if warm:
        service.warm()
    app = FastAPI(
        title="sixfold",
        version=package_version,
        description="Local search and QA over one index, in OpenAI's API shapes (today's and 2021's).",
        docs_url=None,  # Swagger UI loads its scripts from a CDN; the schema is at /openapi.json
        redoc_url=None,
    )
    app.state.service, app.state.limits = service, limits
    app.add_middleware(BodyLimit, max_body=max_body, max_upload=max_upload)
    app.add_middleware(ApiKeyGate, api_key=api_key)  # added last: runs first, before the body is read

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError):
        return error_response(exc.status, exc.message, exc.kind, exc.param, exc.code)

    @app.exception_handler(SixfoldError)
    async def _sixfold_error(request: Request, exc: SixfoldError):
        return error_response(400, str(exc))

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError):
        return validation_error(exc)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException):
        message = {404: f"no such endpoint: {request.method} {request.url.path}", 405: "method not allowed"}.get(
            exc.status_code, str(exc.detail)
        )
        return error_response(exc.status_code, message, code="not_found" if exc.status_code == 404 else None)

    @app.exception_handler(Exception)
    async def _internal(request: Request, exc: Exception):
        return error_response(500, f"internal error: {type(exc).__name__}", kind="server_error")

    def request_deadline(request: Request) -> Deadline:
        """The request's time limit, counted from its arrival (stamped by ApiKeyGate)."""
        return Deadline(limits.request_timeout, request.scope.get("state", {}).get("started"))

    v1 = APIRouter(prefix="/v1")  # the API key is checked by ApiKeyGate, before the body is read

    @app.get("/", include_in_schema=False)
    def page():
        return FileResponse(STATIC / "index.html", media_type="text/html")

    # ---- status and models -----------------------------------------------------------
    @v1.get("/status")
    def status(deadline: Deadline = Depends(request_deadline)):
        """What the index holds (documents, chunks, model, generation, ...); the index by its name, not its path."""
        with deadline.hold(service.index_lock, "the index"):
            service.snapshot()
            data = service.engine.status().to_dict()
        root = data.pop("path")
        name = Path(root).name
        data = _named(data, root, name)  # e.g. a health note names the index, not where it lives
        data["name"] = name
        data["auth"] = api_key is not None
        return data

    @v1.get("/models")
    def list_models():
        return {"object": "list", "data": service.models()}

    @v1.get("/models/{model_id}")
    def get_model(model_id: str):
        service.check_model(model_id)
        return next(m for m in service.models() if m["id"] == model_id)

    # ---- today's endpoints -------------------------------------------------------------
    @v1.post("/embeddings")
    def embeddings(body: EmbeddingRequest, deadline: Deadline = Depends(request_deadline)):
        service.check_model(body.model, ("embedder",))
        texts = _texts(body.input, "input")
        _at_most(len(texts), limits.max_inputs, "inputs", "max_inputs", "input")
        for i, text in enumerate(texts):
            if not text.strip():
                raise ApiError(400, f"input[{i}] is empty", param="input")
        with service.embedders.lend(deadline) as embedder:
            if body.dimensions is not None and body.dimensions != embedder.dim:
                raise ApiError(
                    400, f"{embedder.name} makes {embedder.dim}-d vectors; dimensions cannot change that", param="dimensions"
                )
            vectors = embedder.encode(texts)
            tokens = sum(embedder.token_counts(texts))
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

    @v1.post("/completions")
    def completions(body: CompletionRequest, deadline: Deadline = Depends(request_deadline)):
        service.check_model(body.model, ("completion",))
        prompts = _texts(body.prompt, "prompt")
        _at_most(len(prompts), limits.max_prompts, "prompts", "max_prompts", "prompt")
        n, max_tokens = body.n or 1, body.max_tokens or 16
        work = len(prompts) * n * max_tokens
        if work > limits.max_completion_tokens:
            raise ApiError(
                400,
                f"too many tokens to generate in one request: {len(prompts)} prompts x n {n} x max_tokens {max_tokens} = "
                f"{work}; the server's limit is {limits.max_completion_tokens} ({_setting('max_completion_tokens')})",
                param="max_tokens",
                code="limit_exceeded",
            )
        for i, prompt in enumerate(prompts):
            if len(prompt) > limits.max_prompt_chars:
                raise ApiError(
                    400,
                    f"prompt[{i}] has {len(prompt)} characters; the server's limit is {limits.max_prompt_chars} "
                    f"({_setting('max_prompt_chars')})",
                    param="prompt",
                    code="limit_exceeded",
                )
        if body.logprobs is not None:
            raise ApiError(400, "logprobs are not supported by sixfold", param="logprobs")
        if body.suffix:
            raise ApiError(400, "suffix (insertion) is not supported by sixfold", param="suffix")
        stop = [body.stop] if isinstance(body.stop, str) else list(body.stop or [])
        if len(stop) > 4:
            raise ApiError(400, "at most 4 stop sequences", param="stop")
        options = dict(
            max_tokens=max_tokens,
            temperature=1.0 if body.temperature is None else body.temperature,
            stop=stop,
            model=service.generator,
            seed=body.seed,
        )
        jobs = [(p, prompt) for p, prompt in enumerate(prompts) for _ in range(n)]
        cid, created = _id("cmpl"), int(time.time())
        if body.stream:
            return StreamingResponse(
                _stream_completions(service, jobs, options, body, cid, created, deadline), media_type="text/event-stream"
            )
        choices, prompt_tokens, completion_tokens = [], {}, 0
        with deadline.hold(service.model_lock, "the language model"):
            for index, (p, prompt) in enumerate(jobs):
                deadline.check(f"generating completion {index + 1} of {len(jobs)}")
                done = service.engine.complete(prompt, **options, should_stop=deadline.passed)
                if done.finish_reason == "interrupted":
                    raise deadline.error(f"generating completion {index + 1} of {len(jobs)}")
                prompt_tokens[p] = done.prompt_tokens
                completion_tokens += done.completion_tokens
                text = (prompt if body.echo else "") + done.text
                choices.append({"text": text, "index": index, "logprobs": None, "finish_reason": done.finish_reason})
        used = sum(prompt_tokens.values())
        return {
            "id": cid,
            "object": "text_completion",
            "created": created,
            "model": body.model,
            "choices": choices,
            "usage": {"prompt_tokens": used, "completion_tokens": completion_tokens, "total_tokens": used + completion_tokens},
        }

    # ---- 2021 endpoints -----------------------------------------------------------------
    def search(body: SearchRequest, engine_id: str | None, deadline: Deadline):
        model = service.check_model(body.model or engine_id, ("embedder",)) or service.embedder_name()
        source = _one_source(body.documents, body.file)
        result: dict = {"object": "list", "model": model}
        if source == "documents":
            _at_most(len(body.documents), limits.max_documents, "documents", "max_documents", "documents")
            with service.embedders.lend(deadline) as embedder:
                vectors = embedder.encode([body.query.strip(), *body.documents])
            scores = vectors[1:] @ vectors[0]
            order = np.argsort(-scores, kind="stable")[: body.max_rerank]
            result["data"] = [{"object": "search_result", "document": int(i), "score": float(scores[i])} for i in order]
            return result
        vector = None
        with deadline.hold(service.index_lock, "the index"):
            mode = body.mode or default_mode(service.snapshot().settings.language, model_languages(service.embedder_name()))
        if mode != "bm25" and body.query.strip():
            with service.embedders.lend(deadline) as embedder:
                vector = embedder.encode([body.query.strip()])[0]
        with deadline.hold(service.index_lock, "the index"):
            snap = service.snapshot()
            hits = service.engine.search(body.query, body.max_rerank, mode=mode, query_vector=vector)
            result["generation"] = snap.folder.name
        data = []
        for hit in hits:
            item = {"object": "search_result", "document": hit.chunk_id, "score": hit.score, "text": hit.text}
            if body.return_metadata:
                item["metadata"] = {
                    "path": hit.path,
                    "location": hit.location,
                    "title": hit.title,
                    "heading": hit.heading,
                    "page": hit.page,
                    "start_char": hit.start_char,
                    "end_char": hit.end_char,
                    "rank": hit.rank,
                    "scores": hit.scores,
                }
            data.append(item)
        result["data"] = data
        return result

    @v1.post("/search")
    def search_any(body: SearchRequest, deadline: Deadline = Depends(request_deadline)):
        """Rank inline ``documents`` (cosine) or the index (``file: "index"`` or no documents; hybrid by default)."""
        return search(body, None, deadline)

    @v1.post("/engines/{engine_id}/search")
    def search_engine(engine_id: str, body: SearchRequest, deadline: Deadline = Depends(request_deadline)):
        return search(body, engine_id, deadline)

    @v1.post("/classifications")
    def classifications(body: ClassificationRequest, deadline: Deadline = Depends(request_deadline)):
        model = service.check_model(body.model) or service.embedder_name()
        service.check_model(body.search_model, ("embedder",), "search_model")
        if body.file is not None:
            raise ApiError(400, "give the labeled examples inline as examples: [[text, label], ...]", param="file")
        if not body.examples:
            raise ApiError(400, "examples are required: [[text, label], ...]", param="examples")
        _at_most(len(body.examples), limits.max_examples, "examples", "max_examples", "examples")
        examples = []
        for i, (text, label) in enumerate(body.examples):
            if not text.strip() or not label.strip():
                raise ApiError(400, f"examples[{i}] has an empty text or label", param=f"examples[{i}]")
            examples.append(LabeledExample(text.strip(), label.strip(), line=i))
        if body.labels:
            have = {e.label for e in examples}
            missing = [label for label in body.labels if label not in have]
            if missing:
                raise ApiError(400, f"label '{missing[0]}' has no examples; give examples for every label", param="labels")
            examples = [e for e in examples if e.label in set(body.labels)]
        from sixfold.reader.classify import Classifier

        with service.embedders.lend(deadline) as embedder:
            label = Classifier(examples, embedder, cache=False).classify([body.query])[0]
        return {
            "object": "classification",
            "model": model,
            "search_model": service.embedder_name(),
            "completion": _id("cmpl"),
            "label": label.label,
            "score": label.score,
            "scores": label.scores,
            "selected_examples": [
                {"document": e.line, "label": e.label, "text": e.text, "score": e.similarity} for e in label.examples
            ],
        }

    @v1.post("/answers")
    def answers(body: AnswerRequest, deadline: Deadline = Depends(request_deadline)):
        from sixfold.reader.answer import answer_question

        model = service.check_model(body.model) or service.generator
        service.check_model(body.search_model, ("embedder",), "search_model")
        source = _one_source(body.documents, body.file)
        if source == "documents":
            _at_most(len(body.documents), limits.max_documents, "documents", "max_documents", "documents")
        k = min(body.k, body.max_rerank)
        with deadline.hold(service.index_lock, "the index"):
            if source == "documents":
                vectors = TimedEmbedder(service.embedder, deadline).encode([body.question.strip(), *body.documents])
                scores = vectors[1:] @ vectors[0]
                order = np.argsort(-scores, kind="stable")[:k]
                passages = [
                    Passage(int(i), body.documents[i], f"documents[{int(i)}]", "", float(scores[i]), float(scores[i]))
                    for i in order
                ]
            else:
                service.snapshot()
                passages = service.engine.passages(body.question, k)
            reader = service.engine.reader_model()
        mode = body.mode if body.mode != "auto" else ("extractive" if reader else "generative")
        if mode == "extractive" and not reader:
            raise ApiError(400, "extractive mode needs a tuned reader (POST /v1/fine-tunes) or SIXFOLD_READER", param="mode")
        with deadline.hold(service.model_lock, "the reader model"):
            if mode == "extractive":
                from sixfold.reader.extractive import load_extractive

                answer = answer_question(body.question, passages, mode, extractive=load_extractive(reader))
            else:
                from sixfold.reader.llm import load_llm

                answer = answer_question(body.question, passages, mode, llm=load_llm(service.generator))
        citations = [c.__dict__ for c in answer.citations]
        return {
            "object": "answer",
            "model": model,
            "search_model": service.embedder_name(),
            "completion": _id("cmpl"),
            "answers": [answer.answer],
            "selected_documents": [{"document": p.id, "text": p.text} for p in passages],
            "found": answer.found,
            "confidence": answer.confidence,
            "mode": answer.mode,
            "citations": citations,
            "sources": [{"document": p.id, "path": p.path, "location": p.location} for p in passages],
            "notes": answer.notes,
        }

    # ---- files and fine-tunes -----------------------------------------------------------
    @v1.post("/files")
    def upload(file: UploadFile = File(...), purpose: str = Form(...)):
        """Upload a JSONL training file (purpose ``fine-tune``); it is stored inside the index folder, by id."""
        if purpose != "fine-tune":
            raise ApiError(
                400, f"purpose '{purpose}' is not supported: upload QA pairs with purpose 'fine-tune'", param="purpose"
            )
        data = file.file.read()
        if not data.strip():
            raise ApiError(400, "the uploaded file is empty", param="file")
        try:
            data.decode("utf-8")
        except UnicodeDecodeError:
            raise ApiError(400, "the uploaded file is not UTF-8 text (JSONL or SQuAD JSON expected)", param="file") from None
        return service.files.add(data, file.filename or "upload.jsonl", purpose)

    @v1.get("/files")
    def list_files():
        return {"object": "list", "data": service.files.list()}

    @v1.get("/files/{file_id}")
    def get_file(file_id: str):
        try:
            return service.files.get(file_id)
        except KeyError:
            raise ApiError(404, f"no file '{file_id}'", param="file_id", code="not_found") from None

    @v1.post("/fine-tunes")
    def create_fine_tune(body: FineTuneRequest):
        return service.fine_tunes.create(body).to_dict()

    @v1.get("/fine-tunes")
    def list_fine_tunes():
        return {"object": "list", "data": [job.to_dict(with_events=False) for job in service.fine_tunes.jobs.values()]}

    def job(fine_tune_id: str):
        found = service.fine_tunes.jobs.get(fine_tune_id)
        if found is None:
            raise ApiError(404, f"no fine-tune '{fine_tune_id}'", param="fine_tune_id", code="not_found")
        return found

    @v1.get("/fine-tunes/{fine_tune_id}")
    def get_fine_tune(fine_tune_id: str):
        return job(fine_tune_id).to_dict()

    @v1.get("/fine-tunes/{fine_tune_id}/events")
    def fine_tune_events(fine_tune_id: str):
        return {"object": "list", "data": list(job(fine_tune_id).events)}

    app.include_router(v1)
    return app


def _stream_completions(
    service: Service, jobs, options: dict, body: CompletionRequest, cid: str, created: int, deadline: Deadline
):
    """Server-sent events as OpenAI streams them: one chunk per piece of text, a last one with finish_reason, [DONE].

    Past the deadline (or once the client stops reading) generation stops at its next token; the stream then ends
    with an error event in OpenAI's shape (code ``request_timeout``), since the 200 status line is already sent.
    """
    pieces: queue.Queue = queue.Queue()
    gone = threading.Event()  # the response stopped iterating: the client left

    def work() -> None:
        try:
            with deadline.hold(service.model_lock, "the language model"):
                for index, (_p, prompt) in enumerate(jobs):
                    doing = f"generating completion {index + 1} of {len(jobs)}"
                    deadline.check(doing)
                    if body.echo:
                        pieces.put(("text", index, prompt))
                    done = service.engine.complete(
                        prompt,
                        **options,
                        on_text=lambda piece, index=index: pieces.put(("text", index, piece)),
                        should_stop=lambda: gone.is_set() or deadline.passed(),
                    )
                    if done.finish_reason == "interrupted":
                        raise deadline.error(doing)
                    pieces.put(("done", index, done.finish_reason))
        except ApiError as exc:  # reported in the stream: the status line is already sent
            pieces.put(("error", 0, {"message": exc.message, "type": exc.kind, "param": exc.param, "code": exc.code}))
        except Exception as exc:
            message = str(exc) if isinstance(exc, SixfoldError) else f"internal error: {type(exc).__name__}"
            pieces.put(("error", 0, {"message": message, "type": "invalid_request_error", "param": None, "code": None}))
        finally:
            pieces.put(None)

    threading.Thread(target=work, daemon=True).start()

    def chunk(index: int, text: str, finish: str | None) -> str:
        choice = {"text": text, "index": index, "logprobs": None, "finish_reason": finish}
        data = {"id": cid, "object": "text_completion", "created": created, "model": body.model, "choices": [choice]}
        return f"data: {json.dumps(data)}\n\n"

    try:
        while (item := pieces.get()) is not None:
            kind, index, value = item
            if kind == "text":
                yield chunk(index, value, None)
            elif kind == "done":
                yield chunk(index, "", value)
            else:
                yield f"data: {json.dumps({'error': value})}\n\n"
        yield "data: [DONE]\n\n"
    finally:
        gone.set()


def listen(host: str, port: int) -> socket.socket:
    """A bound, listening socket, or a SixfoldError that says why not (port in use, bad address)."""
    try:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(2048)
    except (OSError, OverflowError) as exc:
        raise SixfoldError(f"cannot listen on {host}:{port}: {getattr(exc, 'strerror', None) or exc}") from None
    return sock


def serve(
    index_path: str,
    host: str = "127.0.0.1",
    port: int = 8000,
    api_key: str | None = None,
    max_body: int = DEFAULT_MAX_BODY,
    embedders: int = 2,
    sock: socket.socket | None = None,
    limits: Limits | None = None,
) -> None:
    """Run the server with uvicorn (one worker process; requests run in its thread pool).

    Bind first (``listen``) so a port in use is one clear error before the models load, not a log after a wait.
    """
    import uvicorn

    sock = sock or listen(host, port)
    app = create_app(index_path, api_key, max_body=max_body, embedders=embedders, limits=limits)
    config = uvicorn.Config(app, workers=1, log_level="info", timeout_graceful_shutdown=5)
    uvicorn.Server(config).run(sockets=[sock])
