"""ASGI plumbing of the service: request ids, bounded body reads and streams that always close."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import AsyncIterator, Callable, Generator
from urllib.parse import parse_qs

import anyio
from fastapi import Request
from fastapi.responses import StreamingResponse
from prometheus_client import Gauge
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.types import Message as AsgiMessage

from layerguard.service.schemas import ApiError, error_body

SECRET_PARAMS = {"api_key", "api-key", "apikey", "key", "access_token", "token", "authorization"}
"""Query parameters that look like credentials: the request is refused and the query never logged."""


class RequestIdMiddleware:
    """Pure ASGI middleware: a request id (``X-Request-Id``), the in-flight gauge, no keys in URLs.

    A request whose query string carries a credential (``?api_key=...``) is refused with a JSON
    400 and its query string is blanked in the ASGI scope, which is what the server's access
    log prints. (Starlette's ``BaseHTTPMiddleware`` would buffer streamed bodies and hide
    client disconnects from the stream.)
    """

    def __init__(self, app: ASGIApp, in_flight: Gauge) -> None:
        self.app = app
        self.in_flight = in_flight

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = "req_" + uuid.uuid4().hex[:24]
        scope.setdefault("state", {})["request_id"] = rid
        query = scope.get("query_string", b"").decode("latin-1")
        if query and {k.lower() for k in parse_qs(query, keep_blank_values=True)} & SECRET_PARAMS:
            scope["query_string"] = b"[redacted]"
            body = json.dumps(error_body(
                "API keys are not accepted in the URL (URLs are logged): send 'Authorization: Bearer <key>'",
                "invalid_request_error", "key_in_url", "api_key",
            )).encode()  # fmt: skip
            headers = [(b"content-type", b"application/json"), (b"x-request-id", rid.encode())]
            await send({"type": "http.response.start", "status": 400, "headers": headers})
            await send({"type": "http.response.body", "body": body})
            return

        async def send_with_id(message: AsgiMessage) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), (b"x-request-id", rid.encode())]}
            await send(message)

        self.in_flight.inc()
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            self.in_flight.dec()


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refused with 413 as soon as it passes ``limit`` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.strip().isdigit() and int(declared) > limit:
        raise ApiError(
            413,
            f"Request body too large: {int(declared)} bytes, the limit is {limit} bytes",
            code="request_too_large",
        )
    buf = bytearray()
    try:
        async for part in request.stream():
            buf += part
            if len(buf) > limit:
                raise ApiError(
                    413, f"Request body too large: over the limit of {limit} bytes", code="request_too_large"
                )
    except ClientDisconnect:  # an aborted upload: the client's doing, no server error
        raise ApiError(
            400, "The request body was not completely received: the client went away", code="incomplete_body"
        ) from None
    return bytes(buf)


class ClosingStreamingResponse(StreamingResponse):
    """A streaming response that always closes its body iterator (normal end, error or disconnect)."""

    async def stream_response(self, send: Send) -> None:
        try:
            await super().stream_response(send)
        finally:
            aclose = getattr(self.body_iterator, "aclose", None)
            if aclose is not None:
                with anyio.CancelScope(shield=True):
                    await aclose()


class Once:
    """Call a function at most once (from any thread)."""

    def __init__(self, fn: Callable[[], None]) -> None:
        self._fn: Callable[[], None] | None = fn
        self._lock = threading.Lock()

    def __call__(self) -> None:
        with self._lock:
            fn, self._fn = self._fn, None
        if fn is not None:
            fn()


async def closing(it: Generator[bytes, None, None]) -> AsyncIterator[bytes]:
    """Iterate a blocking generator in worker threads; close it (in a thread) however the response ends."""
    try:
        while True:
            chunk = await run_in_threadpool(next, it, None)
            if chunk is None:
                break
            yield chunk
    finally:
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(it.close)
