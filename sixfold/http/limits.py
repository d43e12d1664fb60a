"""What one request may ask of the server: the work (``Limits``, each bound a 400 naming the limit and where it is
set) and the time (``Deadline``, past it a 504), and the route dependencies that hand both to a handler."""

from __future__ import annotations

import math
import os
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, fields
from typing import Annotated

from fastapi import Depends, Request

from sixfold.core.errors import SixfoldError
from sixfold.http.errors import ApiError


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
    def from_env(cls, environ: Mapping[str, str] | None = None, **given: float | None) -> Limits:
        """Limits from ``given`` (None: not given), else ``SIXFOLD_<NAME>`` in ``environ`` (default ``os.environ``),
        else the defaults."""
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


class Deadline:
    """The time limit of one request (``--request-timeout``), counted from its arrival.

    Waits for a lock or an embedder end at it, embedding checks it between batches and generation at every token;
    past it the request is answered 504 (``request_timeout``): the server, not the request's sender, ran out of time.
    """

    def __init__(self, seconds: float, started: float | None = None) -> None:
        self.seconds = seconds
        self.at = (time.monotonic() if started is None else started) + seconds

    def left(self) -> float:
        return self.at - time.monotonic()

    def passed(self) -> bool:
        return self.left() <= 0

    def error(self, doing: str) -> ApiError:
        return ApiError(
            504,
            f"the request ran past the server's time limit of {self.seconds:g} s while {doing}; ask for less work "
            "(fewer or shorter texts, fewer tokens) or start the server with a larger --request-timeout",
            code="request_timeout",
            kind="server_error",
        )

    def check(self, doing: str) -> None:
        if self.passed():
            raise self.error(doing)

    @contextmanager
    def hold(self, lock: threading.Lock, doing: str) -> Iterator[None]:
        """``with lock``, but a wait past the deadline is the request's 504."""
        if not lock.acquire(timeout=max(self.left(), 0.0)):
            raise self.error(f"waiting for {doing}")
        try:
            yield
        finally:
            lock.release()


def setting(name: str) -> str:
    """Where a limit is set: ``max_prompts`` -> ``--max-prompts / SIXFOLD_MAX_PROMPTS``."""
    return f"--{name.replace('_', '-')} / SIXFOLD_{name.upper()}"


def at_most(count: int, limit: int, what: str, name: str, param: str) -> None:
    """A 400 (``limit_exceeded``) when a request asks for more than ``limit`` of ``what`` (the limit ``name``)."""
    if count > limit:
        raise ApiError(
            400,
            f"at most {limit} {what} per request, got {count} (the server's limit, {setting(name)})",
            param=param,
            code="limit_exceeded",
        )


def check_completion_work(prompts: list[str], n: int, max_tokens: int, limits: Limits) -> None:
    """Refuse, before any generation, a completion request that asks for more than the server's limits."""
    at_most(len(prompts), limits.max_prompts, "prompts", "max_prompts", "prompt")
    work = len(prompts) * n * max_tokens
    if work > limits.max_completion_tokens:
        raise ApiError(
            400,
            f"too many tokens to generate in one request: {len(prompts)} prompts x n {n} x max_tokens {max_tokens} = "
            f"{work}; the server's limit is {limits.max_completion_tokens} ({setting('max_completion_tokens')})",
            param="max_tokens",
            code="limit_exceeded",
        )
    for i, prompt in enumerate(prompts):
        if len(prompt) > limits.max_prompt_chars:
            raise ApiError(
                400,
                f"prompt[{i}] has {len(prompt)} characters; the server's limit is {limits.max_prompt_chars} "
                f"({setting('max_prompt_chars')})",
                param="prompt",
                code="limit_exceeded",
            )


def request_limits(request: Request) -> Limits:
    return request.app.state.limits


def request_deadline(request: Request) -> Deadline:
    """The request's time limit, counted from its arrival (stamped by ``ApiKeyGate``)."""
    return Deadline(request.app.state.limits.request_timeout, request.scope.get("state", {}).get("started"))


LimitsDep = Annotated[Limits, Depends(request_limits)]
DeadlineDep = Annotated[Deadline, Depends(request_deadline)]
