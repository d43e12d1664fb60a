"""The two ASGI middlewares of the HTTP API, which act before a byte of a request's body is read or parsed: the
API-key gate (401) and the request-body cap (413)."""

from __future__ import annotations

import hmac
import time

from sixfold.http.errors import error_response

UPLOAD_PATH = "/v1/files"


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


DRAIN_CAP = 64 << 20  # bytes of an oversized body read and dropped so that its sender gets the 413; past it, a reset


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
            return await self._too_large(scope, receive, send, limit, more=int(length) <= DRAIN_CAP)
        chunks, size, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                return await self._too_large(scope, receive, send, limit, more=message.get("more_body", False))
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
    async def _too_large(scope, receive, send, limit: int, more: bool = True):
        # Read and drop the rest of the body (up to DRAIN_CAP) before answering: a server that closes a socket with
        # unread data makes the kernel send a reset, and the client then sees "connection reset" instead of the 413.
        drained = 0
        while more and drained <= DRAIN_CAP:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            drained += len(message.get("body", b""))
            more = message.get("more_body", False)
        response = error_response(413, f"request body too large: the limit is {limit} bytes", code="request_too_large")
        response.headers["connection"] = "close"
        await response(scope, receive, send)
