"""ASGI plumbing of the service: request ids, bounded body reads and streams that always close."""

from __future__ import annotations

import threading
import uuid
from collections.abc import AsyncIterator, Callable, Generator

import anyio
from fastapi import Request
from fastapi.responses import StreamingResponse
from prometheus_client import Gauge
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.types import Message as AsgiMessage

from layerguard.service.schemas import ApiError


class RequestIdMiddleware:
    """Pure ASGI middleware: a request id (``X-Request-Id``) and the in-flight gauge.

    (Starlette's ``BaseHTTPMiddleware`` would buffer streamed bodies and hide client
    disconnects from the stream.)
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
    async for part in request.stream():
        buf += part
        if len(buf) > limit:
            raise ApiError(413, f"Request body too large: over the limit of {limit} bytes", code="request_too_large")
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
