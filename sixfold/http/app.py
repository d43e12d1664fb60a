"""The app factory ``create_app`` (the Service, the middleware, the error handlers, the routers) and ``serve``."""

from __future__ import annotations

import os
import socket
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.responses import FileResponse

from sixfold.core import config
from sixfold.core.errors import SixfoldError
from sixfold.http import chat, files, legacy, openai
from sixfold.http.errors import install_error_handlers
from sixfold.http.limits import Limits
from sixfold.http.middleware import ApiKeyGate, BodyLimit
from sixfold.http.service import Service

STATIC = Path(__file__).resolve().parent.parent / "static"
DEFAULT_MAX_BODY = 1 << 20  # 1 MiB for JSON requests
DEFAULT_MAX_UPLOAD = 64 << 20  # 64 MiB for POST /v1/files

page = APIRouter()


@page.get("/", include_in_schema=False)
def search_page() -> FileResponse:
    """The search page (no API key needed: it sends the one it is given)."""
    return FileResponse(STATIC / "index.html", media_type="text/html")


def create_app(
    index_path: str | os.PathLike,
    api_key: str | None = None,
    *,
    max_body: int = DEFAULT_MAX_BODY,
    max_upload: int = DEFAULT_MAX_UPLOAD,
    generator: str | None = None,
    embedders: int = 2,
    warm: bool = True,
    limits: Limits | None = None,
) -> FastAPI:
    """The FastAPI app over the index at ``index_path`` (it must exist). ``api_key``: require ``Bearer KEY`` on /v1;
    ``embedders``: copies of the embedding model that embed queries in parallel; ``limits``: the work and time one
    request may take (default: ``Limits.from_env()``)."""
    limits = limits or Limits.from_env()  # a bad SIXFOLD_* value is one error before any model loads
    service = Service(index_path, generator or config.default_generator(), embedders)
    if warm:
        service.warm()
    app = FastAPI(
        title="sixfold",
        version=_package_version(),
        description="Local search and QA over one index, in OpenAI's API shapes (today's and 2021's).",
        docs_url=None,  # Swagger UI loads its scripts from a CDN; the schema is at /openapi.json
        redoc_url=None,
    )
    app.state.service, app.state.limits, app.state.api_key = service, limits, api_key
    app.add_middleware(BodyLimit, max_body=max_body, max_upload=max_upload)
    app.add_middleware(ApiKeyGate, api_key=api_key)  # added last: runs first, before the body is read
    install_error_handlers(app)
    for router in (page, openai.router, chat.router, legacy.router, files.router):
        app.include_router(router)
    return app


def _package_version() -> str:
    try:
        return version("sixfold")
    except PackageNotFoundError:
        return "dev"


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
