"""Errors of the HTTP API in OpenAI's shape, ``{"error": {"message", "type", "param", "code"}}``: ``ApiError``,
readable validation messages, and the handlers that turn every exception into that shape (a ``SixfoldError``, a
problem the user can fix, is a 400 with its message; a bug is a 500 naming only its type)."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from sixfold.core.errors import SixfoldError


class ApiError(Exception):
    """An error answered in OpenAI's shape: ``{"error": {"message", "type", "param", "code"}}``."""

    def __init__(
        self, status: int, message: str, *, param: str | None = None, code: str | None = None, kind: str = "invalid_request_error"
    ) -> None:
        super().__init__(message)
        self.status, self.message, self.param, self.code, self.kind = status, message, param, code, kind


def error_response(
    status: int, message: str, kind: str = "invalid_request_error", param: str | None = None, code: str | None = None
) -> JSONResponse:
    return JSONResponse({"error": {"message": message, "type": kind, "param": param, "code": code}}, status_code=status)


def _param_path(loc: tuple) -> str | None:
    """('body', 'documents', 3, 'str') -> 'documents[3]' (union member tags like 'str', 'list[int]' or
    'constrained-str' dropped: field names have neither brackets nor dashes)."""
    tags = {"str", "int", "float", "bool"}
    parts = [p for p in loc[1:] if not (isinstance(p, str) and (p in tags or "[" in p or "-" in p))]
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or None


def validation_error(exc: RequestValidationError) -> JSONResponse:
    first = exc.errors()[0]
    param = _param_path(tuple(first.get("loc", ())))
    if first["type"] == "json_invalid":
        detail = (first.get("ctx") or {}).get("error", "")
        message = f"request body is not valid JSON{': ' + detail if detail else ''}"
        param = None
    elif first["type"] == "missing":
        message = f"missing required parameter '{param}'" if param else "request body is missing: send a JSON object"
    elif param is None:
        message = f"request body must be a JSON object ({first['msg']})"
    else:
        message = f"invalid value for '{param}': {first['msg']}"
    return error_response(400, message, param=param, code="invalid_value" if param else "invalid_body")


def install_error_handlers(app: FastAPI) -> None:
    """Every error the app can meet, answered in OpenAI's shape."""

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
        return error_response(exc.status, exc.message, exc.kind, exc.param, exc.code)

    @app.exception_handler(SixfoldError)
    async def _sixfold_error(request: Request, exc: SixfoldError) -> JSONResponse:
        return error_response(400, str(exc))

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        return validation_error(exc)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        message = {404: f"no such endpoint: {request.method} {request.url.path}", 405: "method not allowed"}.get(
            exc.status_code, str(exc.detail)
        )
        return error_response(exc.status_code, message, code="not_found" if exc.status_code == 404 else None)

    @app.exception_handler(Exception)
    async def _internal(request: Request, exc: Exception) -> JSONResponse:
        return error_response(500, f"internal error: {type(exc).__name__}", kind="server_error")
