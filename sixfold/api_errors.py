"""Errors and limits of the HTTP API: OpenAI's error shape, readable validation messages, the API-key gate and the
request-body cap (both ASGI middleware, so they act before a byte of the body is read or parsed)."""

from __future__ import annotations

import hmac
import time

from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

UPLOAD_PATH = "/v1/files"


class ApiError(Exception):
    """An error answered in OpenAI's shape: ``{"error": {"message", "type", "param", "code"}}``."""

    def __init__(
        self, status: int, message: str, *, param: str | None = None, code: str | None = None, kind: str = "invalid_request_error"
    ) -> None:
        super().__init__(message)
        self.status, self.message, self.param, self.code, self.kind = status, message, param, code, kind


def error_response(status: int, message: str, kind: str = "invalid_request_error", param=None, code=None) -> JSONResponse:
    return JSONResponse({"error": {"message": message, "type": kind, "param": param, "code": code}}, status_code=status)


class ApiKeyGate:
    """ASGI middleware: a request under ``/v1`` without ``Authorization: Bearer KEY`` gets its 401 before its body is read.

    A route dependency would run too late: FastAPI reads and parses the body (a whole multipart upload, say) before
    it solves dependencies. The body left unread is never buffered; uvicorn drops the connection after the 401.
    Also stamps ``scope["state"]["started"]``, the clock the request time limit counts from.
    """

    def __init__(self, app, api_key: str | None, prefix: str = "/v1") -> None:
        self.app, self.api_key, self.prefix = app, api_key, prefix

    def allowed(self, headers: list[tuple[bytes, bytes]]) -> bool:
        if self.api_key is None:
            return True
        value = next((v for k, v in headers if k.lower() == b"authorization"), b"").decode("latin-1")
        scheme, _, token = value.partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(token.strip().encode(), self.api_key.encode())

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        scope.setdefault("state", {})["started"] = time.monotonic()
        path = scope["path"]
        if (path == self.prefix or path.startswith(self.prefix + "/")) and not self.allowed(scope["headers"]):
            response = error_response(
                401, "invalid or missing API key: send the header 'Authorization: Bearer KEY'", code="invalid_api_key"
            )
            response.headers["connection"] = "close"  # the unread body makes the connection unusable
            return await response(scope, receive, send)
        return await self.app(scope, receive, send)


class BodyLimit:
    """ASGI middleware: refuse request bodies over a size (413), by Content-Length or while reading a chunked body.

    Hand-written: Starlette and uvicorn have no body-size limit. The body is read (at most ``limit`` bytes) and
    replayed to the app, so an oversized body never reaches a handler.
    """

    def __init__(self, app, max_body: int, max_upload: int) -> None:
        self.app, self.max_body, self.max_upload = app, max_body, max_upload

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            return await self.app(scope, receive, send)
        limit = self.max_upload if scope["path"].rstrip("/") == UPLOAD_PATH else self.max_body
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None and length.isdigit() and int(length) > limit:
            return await self._too_large(scope, receive, send, limit)
        chunks, size, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                return await self._too_large(scope, receive, send, limit)
            chunks.append(chunk)
            more = message.get("more_body", False)
        body, replayed = b"".join(chunks), False

        async def replay():
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        return await self.app(scope, replay, send)

    @staticmethod
    async def _too_large(scope, receive, send, limit: int):
        response = error_response(413, f"request body too large: the limit is {limit} bytes", code="request_too_large")
        response.headers["connection"] = "close"
        await response(scope, receive, send)


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
