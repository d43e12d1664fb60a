"""``serve``: the HTTP server over one index. Its modules load only here, so other commands start fast."""

from __future__ import annotations

import argparse

from sixfold.cli import render
from sixfold.core.errors import SixfoldError

LIMIT_FLAGS = ("max_prompts", "max_completion_tokens", "max_prompt_chars", "max_inputs", "max_documents", "max_examples")


def cmd_serve(args: argparse.Namespace) -> int:
    from sixfold.indexer.store import IndexStore

    if not 0 < args.port < 65536:
        raise SixfoldError(f"port must be between 1 and 65535, got {args.port}")
    if args.max_body_mb <= 0:
        raise SixfoldError("--max-body-mb must be positive")
    from sixfold.http.limits import Limits

    limits = Limits.from_env(**{name: getattr(args, name) for name in (*LIMIT_FLAGS, "request_timeout")})  # a bad one: one line
    IndexStore(args.index).read_pointer()  # before loading any model: a missing index is one error line
    from sixfold.http.app import listen, serve

    sock = listen(args.host, args.port)
    render.console(stderr=True).print(
        f"sixfold: serving {IndexStore(args.index).root} on http://{args.host}:{args.port}/ (API under /v1)"
    )
    serve(
        args.index,
        host=args.host,
        port=args.port,
        api_key=args.api_key,
        max_body=int(args.max_body_mb * (1 << 20)),
        embedders=args.embedders,
        sock=sock,
        limits=limits,
    )
    return 0
