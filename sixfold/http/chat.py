"""``POST /v1/chat/completions`` (also streamed as server-sent events), in OpenAI's chat shapes, with two kinds of
model:

- the plain language model (the id ``/v1/completions`` serves): the conversation rendered with the model's chat
  template and continued;
- ``sixfold-answers`` (``GROUNDED_MODEL``): the last user message answered from the index through the Engine's
  answer path (retrieve, read, cite or abstain). The reply carries footnote markers (``[1]``) after the claim and a
  footnote list; the response carries a ``sixfold`` field with the sources, whether the answer was found and its
  confidence. Not found, the reply says so plainly and lists the closest passages.

The request bodies are declared here (they are this endpoint's alone). Work and time are bounded as for
``/v1/completions`` (``sixfold.http.limits``): characters per conversation, n x max_tokens, the model's window
(``context_length_exceeded``), and the request's deadline (generation stops at its next token; a 504).
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterator
from typing import Annotated, Any, Literal

from fastapi import APIRouter
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, StrictStr

from sixfold.core.errors import SixfoldError, first_line
from sixfold.http.errors import ApiError
from sixfold.http.limits import Deadline, DeadlineDep, Limits, LimitsDep, setting
from sixfold.http.schemas import INT64, MAX_TEXT, new_id
from sixfold.http.service import GROUNDED_MODEL, Service, ServiceDep
from sixfold.http.streaming import DONE, stream_from_thread
from sixfold.reader.types import Answer, Completion, not_found_reply

router = APIRouter(prefix="/v1")

DEFAULT_MAX_TOKENS = 256  # a reply's tokens when the request names no max_tokens (OpenAI: up to the window)
GROUNDED_PASSAGES = 5  # passages the grounded model reads (as /v1/answers by default)
MAX_STOP = 4


# ---- request bodies ------------------------------------------------------------------------------------
class _Body(BaseModel):
    model_config = ConfigDict(extra="ignore", protected_namespaces=())


class ContentPart(_Body):
    """One part of a message's content; only ``{"type": "text", "text": ...}`` is read (checked in ``message_text``)."""

    type: StrictStr
    text: StrictStr | None = Field(None, max_length=MAX_TEXT)


class ChatMessage(_Body):
    role: Literal["system", "developer", "user", "assistant", "tool"]  # "developer": today's name for system
    content: Annotated[StrictStr, Field(max_length=MAX_TEXT)] | list[ContentPart] | None = None
    name: StrictStr | None = None
    tool_call_id: StrictStr | None = None
    tool_calls: list[dict] | None = None  # an assistant turn that called tools (its content may be null)


class StreamOptions(_Body):
    include_usage: bool | None = False


class ChatCompletionRequest(_Body):
    """OpenAI's chat completion body. Declared but unused (as OpenAI's clients may send them): ``user``,
    ``presence_penalty``, ``frequency_penalty``, ``logit_bias``, ``tool_choice`` without tools; refused with a 400:
    ``logprobs``, ``tools`` / ``functions``, a ``response_format`` other than text. The grounded model reads at
    temperature 0 and writes one short answer: it ignores the sampling parameters and takes ``n`` 1 only."""

    model: StrictStr
    messages: list[ChatMessage]
    temperature: float | None = Field(None, ge=0.0, le=2.0)
    top_p: float | None = Field(None, gt=0.0, le=1.0)
    max_tokens: int | None = Field(None, ge=1, le=4096)
    max_completion_tokens: int | None = Field(None, ge=1, le=4096)
    n: int | None = Field(None, ge=1, le=4)
    stop: StrictStr | list[StrictStr] | None = None
    seed: int | None = Field(None, ge=-INT64, lt=INT64)
    stream: bool | None = False
    stream_options: StreamOptions | None = None
    user: str | None = None
    presence_penalty: float | None = None
    frequency_penalty: float | None = None
    logit_bias: dict[str, float] | None = None
    logprobs: bool | None = None
    top_logprobs: int | None = Field(None, ge=0, le=20)
    tools: list[dict] | None = None
    functions: list[dict] | None = None
    tool_choice: str | dict | None = None
    response_format: dict | None = None


# ---- the endpoint --------------------------------------------------------------------------------------
@router.post("/chat/completions")
def chat_completions(body: ChatCompletionRequest, service: ServiceDep, limits: LimitsDep, deadline: DeadlineDep):
    service.check_model(body.model, ("completion", "grounded"))
    messages = conversation(body)
    cid, created = new_id("chatcmpl"), int(time.time())
    chunks = _Chunks(cid, created, body.model)
    usage_chunk = bool(body.stream_options and body.stream_options.include_usage)
    if body.model == GROUNDED_MODEL:
        content, sources, counts = _grounded(body, messages, service, limits, deadline)
        if body.stream:
            return _sse(_grounded_events(chunks, content, sources, counts if usage_chunk else None))
        message = {"role": "assistant", "content": content, "refusal": None}
        choice = {"index": 0, "message": message, "logprobs": None, "finish_reason": "stop"}
        return {**chunks.head("chat.completion"), "choices": [choice], "usage": counts, "sixfold": sources}
    job = _plain_job(body, messages, service, limits, deadline)
    if body.stream:
        return _sse(_plain_events(service, job, deadline, chunks, usage_chunk))
    choices, used = [], _Usage()
    for index, done in generate(service, job, deadline):
        used.add(done)
        message = {"role": "assistant", "content": done.text, "refusal": None}
        choices.append({"index": index, "message": message, "logprobs": None, "finish_reason": done.finish_reason})
    return {**chunks.head("chat.completion"), "choices": choices, "usage": used.to_dict()}


# ---- the conversation ------------------------------------------------------------------------------------
def message_text(message: ChatMessage, index: int) -> str:
    """A message's content as one text: a string, or its text parts joined; other parts are a 400."""
    content = message.content
    if content is None:
        if message.role == "assistant" and message.tool_calls:
            return ""
        raise ApiError(400, f"messages[{index}] has no content", param=f"messages[{index}].content")
    if isinstance(content, str):
        return content
    texts = []
    for j, part in enumerate(content):
        if part.type != "text" or part.text is None:
            what = f"has type '{part.type}'" if part.type != "text" else "has no 'text'"
            raise ApiError(
                400,
                f"messages[{index}].content[{j}] {what}; sixfold reads only text parts ({{'type': 'text', 'text': ...}})",
                param=f"messages[{index}].content[{j}]",
            )
        texts.append(part.text)
    return "\n".join(texts)


def conversation(body: ChatCompletionRequest) -> list[dict[str, str]]:
    """The messages as ``{"role", "content"}`` dicts (``developer`` read as ``system``), and the 400s for what
    sixfold cannot do, before any model work."""
    if not body.messages:
        raise ApiError(400, "messages is empty: send at least one message", param="messages")
    if body.logprobs:
        raise ApiError(400, "logprobs are not supported by sixfold", param="logprobs")
    if body.tools or body.functions:
        param = "tools" if body.tools else "functions"
        raise ApiError(400, "tools (function calling) are not supported by sixfold", param=param)
    if body.response_format and body.response_format.get("type", "text") != "text":
        raise ApiError(400, "only the text response_format is supported by sixfold", param="response_format")
    messages = []
    for i, message in enumerate(body.messages):
        role = "system" if message.role == "developer" else message.role
        messages.append({"role": role, "content": message_text(message, i)})
    if not any(m["content"].strip() for m in messages):
        raise ApiError(400, "the messages hold no text", param="messages")
    return messages


def chat_prompt(llm: Any, messages: list[dict[str, str]]) -> str:
    """The prompt for a whole conversation in the model's chat template (multi-turn ``chat_prompt(system, user)``).

    The model's own ``chat(messages)`` where it has one, else its tokenizer's template; without either, the
    conversation as ``role: text`` lines through ``chat_prompt(system, user)``. A template that refuses the
    conversation (e.g. roles that must alternate) is a 400.
    """
    tokenizer = getattr(llm, "tokenizer", None)
    try:
        if hasattr(llm, "chat"):
            return llm.chat(messages)
        if tokenizer is not None and getattr(tokenizer, "chat_template", None):
            return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    except Exception as exc:  # jinja2's TemplateError (raise_exception in the template), SixfoldError and the like
        message = first_line(exc).removeprefix("the model's chat template refused the messages: ")
        raise ApiError(400, f"the model's chat template refused these messages: {message}", param="messages") from None
    system = "\n\n".join(m["content"] for m in messages if m["role"] == "system")
    turns = [m for m in messages if m["role"] != "system"]
    if len(turns) == 1 and turns[0]["role"] == "user":
        return llm.chat_prompt(system, turns[0]["content"])
    return llm.chat_prompt(system, "\n\n".join(f"{m['role']}: {m['content']}" for m in turns))


def _stop(body: ChatCompletionRequest) -> list[str]:
    stop = [body.stop] if isinstance(body.stop, str) else list(body.stop or [])
    if len(stop) > MAX_STOP:
        raise ApiError(400, f"at most {MAX_STOP} stop sequences", param="stop")
    return stop


def _characters(texts: list[str], limits: Limits, what: str) -> None:
    count = sum(len(t) for t in texts)
    if count > limits.max_prompt_chars:
        raise ApiError(
            400,
            f"{what} {count} characters; the server's limit is {limits.max_prompt_chars} ({setting('max_prompt_chars')})",
            param="messages",
            code="limit_exceeded",
        )


# ---- the plain language model ----------------------------------------------------------------------------
class _Job:
    """What to generate: one prompt, ``n`` times, with these options (``CausalLM.complete``'s keywords)."""

    def __init__(self, llm: Any, prompt: str, n: int, options: dict) -> None:
        self.llm, self.prompt, self.n, self.options = llm, prompt, n, options


def _plain_job(
    body: ChatCompletionRequest, messages: list[dict[str, str]], service: Service, limits: Limits, deadline: Deadline
) -> _Job:
    """The prompt and options, and a 400 for what the server's limits or the model's window refuse, before any
    generation (so a streamed request gets its error as a status, not as an event)."""
    from sixfold.reader.llm import load_llm  # the Engine holds no accessor for the LM; its chat template is needed

    _characters([m["content"] for m in messages], limits, "the messages hold")
    stop, n = _stop(body), body.n or 1
    asked = body.max_completion_tokens or body.max_tokens
    param = "max_completion_tokens" if body.max_completion_tokens else "max_tokens"
    if asked is not None and n * asked > limits.max_completion_tokens:
        raise ApiError(
            400,
            f"too many tokens to generate in one request: n {n} x {param} {asked} = {n * asked}; the server's limit "
            f"is {limits.max_completion_tokens} ({setting('max_completion_tokens')})",
            param=param,
            code="limit_exceeded",
        )
    llm = load_llm(service.engine.generator_model(service.language_model(body.model)))
    with deadline.hold(service.model_lock, "the language model"):  # a tokenizer is not shared with a generation
        prompt = chat_prompt(llm, messages)
        tokens, window = llm.count_tokens(prompt), int(getattr(llm, "window", 2048))
    room = window - tokens
    if room < 1 or (asked is not None and asked > room):
        wanted = f" + {param} {asked}" if asked is not None and room >= 1 else ""
        raise ApiError(
            400,
            f"the messages take {tokens} tokens{wanted}, more than the model's window of {window} tokens; "
            "send a shorter conversation" + (f" or ask for at most {room} tokens" if room >= 1 else ""),
            param="messages" if room < 1 else param,
            code="context_length_exceeded",
        )
    max_tokens = asked or min(DEFAULT_MAX_TOKENS, room, limits.max_completion_tokens // n)
    temperature = 1.0 if body.temperature is None else body.temperature
    top_p = 1.0 if body.top_p is None else body.top_p
    options = dict(max_tokens=max_tokens, temperature=temperature, top_p=top_p, stop=stop, seed=body.seed)
    return _Job(llm, prompt, n, options)


def generate(
    service: Service,
    job: _Job,
    deadline: Deadline,
    *,
    on_start: Callable[[int], None] | None = None,
    on_text: Callable[[int, str], None] | None = None,
    gone: Callable[[], bool] = lambda: False,
) -> Iterator[tuple[int, Completion]]:
    """Each of the ``n`` choices in turn, under the model lock (as ``Service.completions``, with ``top_p``).
    Choice ``i`` samples with ``seed + i``, so a seeded request is repeatable and its choices still differ. Past
    the deadline (or once ``gone()``) generation stops at its next token and the request is a 504."""
    with deadline.hold(service.model_lock, "the language model"):
        for index in range(job.n):
            doing = f"generating choice {index + 1} of {job.n}"
            deadline.check(doing)
            if on_start:
                on_start(index)
            seed = job.options["seed"]
            done = job.llm.complete(
                job.prompt,
                **{**job.options, "seed": None if seed is None else seed + index},
                on_text=None if on_text is None else (lambda piece, index=index: on_text(index, piece)),
                should_stop=lambda: gone() or deadline.passed(),
            )
            if done.finish_reason == "interrupted":
                raise deadline.error(doing)
            yield index, done


class _Usage:
    """Tokens of one request: the prompt once (every choice reads the same prompt), the choices' tokens summed."""

    def __init__(self) -> None:
        self.prompt, self.completion = 0, 0

    def add(self, done: Completion) -> None:
        self.prompt = done.prompt_tokens
        self.completion += done.completion_tokens

    def to_dict(self) -> dict:
        return usage(self.prompt, self.completion)


def usage(prompt: int, completion: int) -> dict:
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


# ---- the grounded model ----------------------------------------------------------------------------------
def _grounded(
    body: ChatCompletionRequest, messages: list[dict[str, str]], service: Service, limits: Limits, deadline: Deadline
) -> tuple[str, dict, dict]:
    """The reply (text with footnote markers), the ``sixfold`` field and the usage for the last user message."""
    if (body.n or 1) > 1:
        raise ApiError(400, f"{GROUNDED_MODEL} gives one answer per question: n must be 1", param="n")
    _stop(body)  # checked, as for the plain model; the reader uses its own
    question = next((m["content"].strip() for m in reversed(messages) if m["role"] == "user"), "")
    if not question:
        raise ApiError(400, f"{GROUNDED_MODEL} answers the last user message, and there is none with text", param="messages")
    _characters([question], limits, "the question has")
    reader = service.engine.reader_model()
    try:
        mode = service.engine.answer_mode("auto", reader)
    except SixfoldError as exc:
        raise ApiError(400, str(exc), param="model") from None
    passages = service.passages(question, GROUNDED_PASSAGES, deadline)
    answer = service.answer(question, passages, mode, reader, deadline)
    content = grounded_text(answer)
    with service.embedders.lend(deadline) as embedder:  # the index's tokenizer: always loaded, whatever reads
        asked, said = embedder.token_counts([question, content])
    return content, grounding(answer), usage(asked, said)


def _where(citation: Any) -> str:
    return f"{citation.path}, {citation.location}" if citation.location else citation.path


def grounded_text(answer: Answer) -> str:
    """The reply: the answer with its markers after the claim (before its closing punctuation) and one footnote per
    source, with the quoted sentence when the citation has one; not found, a plain sentence saying so and the
    closest passages."""
    if not answer.found:
        if not answer.citations:
            return not_found_reply(answer.question, closest=False)
        closest = "\n".join(f"[{i}] {_where(c)}: {' '.join(c.snippet.split())}" for i, c in enumerate(answer.citations, 1))
        return f"{not_found_reply(answer.question, closest=True)}\n\n{closest}"
    claim, end = re.fullmatch(r"(.*?)([.!?…]*)", answer.answer.strip(), re.S).groups()  # type: ignore[union-attr]
    markers = "".join(f"[{i}]" for i in range(1, len(answer.citations) + 1))
    text = f"{claim} {markers}{end}" if markers else claim + end
    notes = []
    for i, citation in enumerate(answer.citations, 1):
        quote = getattr(citation, "quote", None)
        notes.append(f"[{i}] {_where(citation)}" + (f': "{quote}"' if quote else ""))
    return text + ("\n\n" + "\n".join(notes) if notes else "")


def grounding(answer: Answer) -> dict:
    """The response's ``sixfold`` field: found or abstained, confidence, and each source by its footnote number."""
    sources = []
    for i, citation in enumerate(answer.citations, 1):
        source = {
            "marker": f"[{i}]",
            "passage_id": citation.passage_id,
            "path": citation.path,
            "location": citation.location,
            "snippet": citation.snippet,
            "quote": getattr(citation, "quote", None),
        }
        quote_start = getattr(citation, "quote_start", None)  # where the quote is in the passage text
        if quote_start is not None:
            source.update(quote_start=quote_start, quote_end=getattr(citation, "quote_end", None))
        if citation.start is not None:  # the answer span, when extractive
            source.update(start=citation.start, end=citation.end)
        sources.append(source)
    return {
        "question": answer.question,
        "answer": answer.answer,
        "found": answer.found,
        "abstained": not answer.found,
        "confidence": answer.confidence,
        "mode": answer.mode,
        "sources": sources,
        "notes": answer.notes,
    }


# ---- streaming ---------------------------------------------------------------------------------------------
class _Chunks:
    """Server-sent events in OpenAI's ``chat.completion.chunk`` shape."""

    def __init__(self, cid: str, created: int, model: str) -> None:
        self.id, self.created, self.model = cid, created, model

    def head(self, kind: str) -> dict:
        return {"id": self.id, "object": kind, "created": self.created, "model": self.model, "system_fingerprint": None}

    def event(self, choices: list[dict], **extra: Any) -> str:
        return f"data: {json.dumps({**self.head('chat.completion.chunk'), 'choices': choices, **extra})}\n\n"

    def delta(self, index: int, delta: dict, finish: str | None = None, **extra: Any) -> str:
        return self.event([{"index": index, "delta": delta, "logprobs": None, "finish_reason": finish}], **extra)

    def role(self, index: int) -> str:
        return self.delta(index, {"role": "assistant", "content": ""})

    def text(self, index: int, text: str) -> str:
        return self.delta(index, {"content": text})

    def finish(self, index: int, reason: str, **extra: Any) -> str:
        return self.delta(index, {}, reason, **extra)

    def usage(self, counts: dict) -> str:
        return self.event([], usage=counts)  # stream_options.include_usage: a last chunk with no choices


def _sse(events: Iterator[str]) -> StreamingResponse:
    return StreamingResponse(events, media_type="text/event-stream")


def _grounded_events(chunks: _Chunks, content: str, sources: dict, counts: dict | None) -> Iterator[str]:
    """The answer made whole (before the status line, so its errors are statuses), streamed: the role, the answer,
    its footnotes, a last chunk with ``finish_reason`` and the ``sixfold`` field, then [DONE]."""
    yield chunks.role(0)
    answer, _, notes = content.partition("\n\n")
    yield chunks.text(0, answer)
    if notes:
        yield chunks.text(0, "\n\n" + notes)
    yield chunks.finish(0, "stop", sixfold=sources)
    if counts is not None:
        yield chunks.usage(counts)
    yield DONE


def _plain_events(service: Service, job: _Job, deadline: Deadline, chunks: _Chunks, usage_chunk: bool) -> Iterator[str]:
    """Per choice a role chunk, its text as it comes, a chunk with finish_reason; then [DONE].

    Generation runs in a thread that feeds a queue. Past the deadline (or once the client stops reading)
    generation stops at its next token; the stream then ends with an error event in OpenAI's shape (code
    ``request_timeout``), since the 200 status line is already sent.
    """

    def work(put, gone) -> None:
        counts = _Usage()

        def text(index: int, piece: str) -> None:
            if piece:
                put(chunks.text(index, piece))

        choices = generate(service, job, deadline, on_start=lambda index: put(chunks.role(index)), on_text=text, gone=gone)
        for index, done in choices:
            counts.add(done)
            put(chunks.finish(index, done.finish_reason))
        if usage_chunk:
            put(chunks.usage(counts.to_dict()))

    return stream_from_thread(work)
