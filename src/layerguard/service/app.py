"""The guarded, OpenAI-compatible HTTP service.

Endpoints (all JSON; errors are ``{"error": {"message", "type", "code", "param"}}``):

* ``POST /v1/chat/completions``: OpenAI chat completions, streaming (SSE) or not, ``tools``
  accepted. Flow: authenticate -> rate limit -> parse -> ``backend.prepare`` -> input guard
  -> (declined: a safe completion with ``finish_reason="content_filter"``) -> generate ->
  tool calls through the ``tool_gate`` ring -> audit record (committed before the response
  ends). Every response carries a ``layerguard`` extension object with the verdict.
* ``POST /v1/guard/check``: the guard's verdict for ``messages`` or ``prompt``, no generation.
* ``GET /v1/models``: the served model.
* ``GET /v1/escalations?status=open`` and ``POST /v1/escalations/{id}`` (``{"action":
  "approve"|"reject", "note": ...}``): review queue, admin keys only.
* ``GET /healthz`` (alive), ``GET /readyz`` (model and database), ``GET /metrics`` (Prometheus).
  ``metrics_access`` (default ``admin``): ``/metrics`` needs an admin key and ``/readyz`` shows
  its details (backend, layers, rings) only to one; ``public`` opens both, ``off`` turns
  ``/metrics`` off. A key in the URL (``?api_key=``) is refused and never logged.

Declined requests: ``block`` returns a refusal, ``rewrite`` the ring's replacement text and
``escalate`` a notice with the escalation id; all three end with ``content_filter``. Once an
admin approves an input escalation, the same client may resend the same messages with the
header ``X-Layerguard-Escalation: <id>`` to have them answered (a ``block`` is never overridden).
When an output monitor halts generation, a stream ends with ``content_filter`` (what was
already sent stays sent); a non-streamed response withholds the partial text.

Tool calls: when a request offers ``tools``, Qwen-format ``<tool_call>{"name": ...,
"arguments": ...}</tool_call>`` text in the model's output is parsed into OpenAI
``tool_calls`` (a stream holds that text back, never sending it as content). Each call goes
through the guard's ``tool_gate`` ring alone: ``allow`` passes, ``block`` (and calls to tools
the request did not offer) is removed, ``escalate`` creates an escalation and is withheld;
``layerguard.tool_calls`` reports every decision. Without ``tools`` the text passes unchanged.

Conversation ring: the input guard is :meth:`GuardedModel.check`, so a ``conversation``
ring sees the other rings' scores for the turn. The conversation is ``X-Conversation-Id``,
else the request's ``user`` field, else a hash chain of the user messages.

Audit: one record per authenticated request to the two POST endpoints (including refused
ones: ``invalid``, ``rate_limited``, ``error``), written and committed before the response
ends (before ``data: [DONE]`` for streams; a client that disconnects mid-stream gets a
``client_disconnected`` record). Keys are stored as SHA-256 hashes only.

This module only wires the parts into FastAPI: :mod:`~layerguard.service.schemas` (request
models, errors, JSON), :mod:`~layerguard.service.auth` (keys, rate limits), :mod:`~layerguard.service.flow` and
:mod:`~layerguard.service.scheduler` (the model's queues, batching and generation permits),
:mod:`~layerguard.service.chat` (the guard flow of both POST endpoints),
:mod:`~layerguard.service.audit` (audit rows, escalations), :mod:`~layerguard.service.responses`
(OpenAI bodies and SSE chunks), :mod:`~layerguard.service.transport` (ASGI plumbing) and
:mod:`~layerguard.service.metrics`; tool-call text is parsed by :mod:`layerguard.guard.tool_calls`.
The names that used to live here are re-exported.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from layerguard.guard.backend import Backend
from layerguard.guard.guarded import GuardedModel
from layerguard.guard.pipeline import Guard
from layerguard.guard.tool_calls import ToolCallFilter, openai_tool_call, split_tool_calls
from layerguard.service.audit import Auditor
from layerguard.service.auth import Authenticator, RequestCtx
from layerguard.service.chat import ChatHandler, GateResult
from layerguard.service.config import ServiceConfig
from layerguard.service.flow import Dispatcher
from layerguard.service.metrics import Metrics
from layerguard.service.schemas import (
    ApiError,
    ChatMessageIn,
    ChatRequest,
    ContentPart,
    FunctionSpec,
    GuardCheckRequest,
    ResolveRequest,
    StreamOptions,
    ToolSpec,
    dumps,
    error_body,
    json_response,
    parse_body,
    to_messages,
)
from layerguard.service.storage import RateLimiter, Store, make_rate_limiter
from layerguard.service.transport import RequestIdMiddleware, read_body
from layerguard.version import __version__

__all__ = [
    "ApiError",
    "ChatMessageIn",
    "ChatRequest",
    "ContentPart",
    "FunctionSpec",
    "GateResult",
    "GuardCheckRequest",
    "Metrics",
    "RequestCtx",
    "ResolveRequest",
    "Service",
    "StreamOptions",
    "ToolCallFilter",
    "ToolSpec",
    "create_app",
    "dumps",
    "error_body",
    "json_response",
    "openai_tool_call",
    "split_tool_calls",
    "to_messages",
]

log = logging.getLogger("layerguard.service")


class Service:
    """The parts behind the routes, kept apart from FastAPI so they are plain, testable code.

    Args:
        guard: The guard (its ``tool_gate`` ring, if any, gates the model's tool calls).
        backend: The model backend.
        store: The SQL store (audit, escalations, rate events).
        config: Service settings.
        rate_limiter: Override of the limiter chosen by ``config.rate_limiter``.
        env: Environment used to resolve ``key_env`` keys (default ``os.environ``).
    """

    def __init__(
        self,
        guard: Guard,
        backend: Backend,
        store: Store,
        config: ServiceConfig,
        *,
        rate_limiter: RateLimiter | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        self.guard = guard
        if guard.stop_early and any(r.stage == "turn" and getattr(r, "burst_blocks", 0) for r in guard.rings):
            # the burst detector counts only blocks a second ring agrees with: every input ring must run
            log.info("running every input ring on blocked requests (the conversation ring's burst detector)")
            guard.stop_early = False
        self.backend = backend
        self.store = store
        self.config = config
        self.metrics = Metrics()
        limiter = rate_limiter if rate_limiter is not None else make_rate_limiter(store, config.rate_limiter)
        self.auth = Authenticator(config.resolve_keys(env), limiter, self.metrics)
        self.auditor = Auditor(store, self.metrics, config)
        self.guarded = GuardedModel(guard, backend)
        self.handler = ChatHandler(self.guarded, config, self.metrics, self.auth, self.auditor)
        self.dispatch = Dispatcher(self.handler, config, self.metrics)
        self.model_names = self.handler.model_names

    def close(self) -> None:
        """Stop the model thread (if this service runs a local model)."""
        self.dispatch.close()


def create_app(
    guard: Guard,
    backend: Backend,
    store: Store,
    config: ServiceConfig,
    *,
    rate_limiter: RateLimiter | None = None,
    env: dict[str, str] | None = None,
) -> FastAPI:
    """The FastAPI application serving ``backend`` behind ``guard``.

    Args:
        guard: Input guard (a ``conversation`` ring sees the other rings' turn scores; a
            ``tool_gate`` ring gates the model's tool calls).
        backend: Model backend (local model or upstream URL).
        store: Audit/escalation store.
        config: Keys, limits, redaction (see :class:`ServiceConfig`).
        rate_limiter: Override of the limiter chosen by ``config.rate_limiter``.
        env: Environment used to resolve ``key_env`` keys (default ``os.environ``).

    Raises:
        InvalidInputError: keys that cannot be resolved.
    """
    svc = Service(guard, backend, store, config, rate_limiter=rate_limiter, env=env)
    app = FastAPI(title="layerguard", version=__version__, docs_url=None, redoc_url=None, openapi_url=None)
    app.state.service = svc
    _add_error_handlers(app, svc)
    app.add_middleware(RequestIdMiddleware, in_flight=svc.metrics.in_flight)
    _add_guarded_routes(app, svc)
    _add_escalation_routes(app, svc)
    _add_health_routes(app, svc)
    return app


def _add_error_handlers(app: FastAPI, svc: Service) -> None:
    """Every error as OpenAI-style JSON, counted in the metrics."""

    def error_response(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> Response:
        svc.metrics.errors.labels(str(status), str(body["error"].get("code"))).inc()
        return JSONResponse(body, status_code=status, headers=headers)

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> Response:
        return error_response(exc.status, error_body(exc.message, exc.type, exc.code, exc.param), exc.headers)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        msg = f"{request.method} {request.url.path}: {exc.detail}"
        headers = dict(exc.headers) if exc.headers else None
        return error_response(exc.status_code, error_body(msg, "invalid_request_error", code), headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> Response:
        first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid request"}
        param = ".".join(str(x) for x in first["loc"])
        return error_response(
            400, error_body(f"Invalid value for '{param}': {first['msg']}", "invalid_request_error", "invalid_value",
                            param),
        )  # fmt: skip

    @app.exception_handler(Exception)
    async def _unhandled(request: Request, exc: Exception) -> Response:
        rid = getattr(request.state, "request_id", "-")
        log.error("unhandled error in %s %s (request %s)", request.method, request.url.path, rid, exc_info=exc)
        return error_response(
            500, error_body(f"Internal server error (request {rid})", "server_error", "internal_error")
        )


def _add_guarded_routes(app: FastAPI, svc: Service) -> None:
    """The audited POST endpoints (chat completions, guard check) and the model list."""
    limit = svc.config.max_body_bytes

    async def audited(
        fn: Callable[[RequestCtx, bytes], Awaitable[Response]], ctx: RequestCtx, request: Request
    ) -> Response:
        try:
            return await fn(ctx, await read_body(request, limit))
        except ApiError as exc:
            await run_in_threadpool(svc.auditor.audit_failure, ctx, exc)
            raise
        except Exception:
            failure = ApiError(500, "internal error", type="server_error", code="internal_error")
            await run_in_threadpool(svc.auditor.audit_failure, ctx, failure)
            raise

    @app.post("/v1/chat/completions")
    async def chat_completions(request: Request) -> Response:
        return await audited(svc.dispatch.chat, svc.auth.context(request, "chat.completions"), request)

    @app.post("/v1/guard/check")
    async def guard_check(request: Request) -> Response:
        return await audited(svc.dispatch.check, svc.auth.context(request, "guard.check"), request)

    @app.get("/v1/models")
    async def models(request: Request) -> Response:
        svc.auth.authenticate(request)
        data = [{"id": m, "object": "model", "created": 0, "owned_by": "layerguard"} for m in svc.model_names]
        return json_response({"object": "list", "data": data})


def _add_escalation_routes(app: FastAPI, svc: Service) -> None:
    """The review queue (admin keys only)."""

    @app.get("/v1/escalations")
    async def list_escalations(request: Request, status: str = "open", limit: int = 100) -> Response:
        svc.auth.authenticate(request, admin=True)
        if status not in ("open", "approved", "rejected", "all"):
            raise ApiError(
                400, f"Invalid value for 'status': {status!r} (use open, approved, rejected or all)",
                code="invalid_value", param="status",
            )  # fmt: skip
        if not 1 <= limit <= 1000:
            raise ApiError(400, "Invalid value for 'limit': use 1..1000", code="invalid_value", param="limit")
        rows = await run_in_threadpool(svc.store.list_escalations, None if status == "all" else status, limit=limit)
        return json_response({"object": "list", "data": rows})

    @app.post("/v1/escalations/{eid}")
    async def resolve_escalation(request: Request, eid: str) -> Response:
        admin, _ = svc.auth.authenticate(request, admin=True)
        body = await read_body(request, svc.config.max_body_bytes)
        req: ResolveRequest = parse_body(body, ResolveRequest)
        outcome, row = await run_in_threadpool(
            svc.store.resolve_escalation, eid, req.new_status, resolved_by=admin.name, note=req.note
        )
        if outcome == "not_found":
            raise ApiError(404, f"No escalation with id {eid!r}", code="escalation_not_found", param="id")
        if outcome == "already_resolved":
            assert row is not None
            raise ApiError(
                409, f"Escalation {eid!r} is already {row['status']} (by {row['resolved_by']})",
                code="escalation_resolved",
            )  # fmt: skip
        return json_response(row)


def _add_health_routes(app: FastAPI, svc: Service) -> None:
    """Liveness, readiness (model and database) and Prometheus metrics."""

    @app.get("/healthz")
    async def healthz() -> Response:
        return json_response({"status": "ok", "version": __version__})

    access = svc.config.metrics_access

    def may_see_details(request: Request) -> bool:
        if access == "public":
            return True
        if access == "off" or not request.headers.get("authorization"):
            return False
        svc.auth.authenticate(request, admin=True)  # a wrong or non-admin key is told so
        return True

    @app.get("/readyz")
    async def readyz(request: Request) -> Response:
        ok, facts = await run_in_threadpool(_readiness, svc)
        status = {"status": "ready" if ok else "not ready"}
        if not may_see_details(request):  # the probe layer and ring names are for operators
            return json_response(status, status=200 if ok else 503)
        facts.update(status, rings=svc.guard.names, unavailable_rings=svc.guard.unavailable)
        return json_response(facts, status=200 if ok else 503)

    @app.get("/metrics")
    async def metrics(request: Request) -> Response:
        if access == "off":
            raise ApiError(404, "GET /metrics: metrics are turned off (metrics_access: off)", code="not_found")
        if access == "admin":
            svc.auth.authenticate(request, admin=True)
        return Response(generate_latest(svc.metrics.registry), media_type=CONTENT_TYPE_LATEST)


def _readiness(svc: Service) -> tuple[bool, dict[str, Any]]:
    """Whether the backend and the database answer, and what they said."""
    facts: dict[str, Any] = {}
    ok = True
    try:
        facts["backend"] = svc.backend.info()
        ready = getattr(svc.backend, "ready", None)
        if callable(ready) and not ready():
            ok, facts["backend_error"] = False, "backend not ready"
    except Exception as exc:
        ok, facts["backend_error"] = False, f"{type(exc).__name__}: {exc}"
    db_ok = svc.store.ping()
    facts["database"] = "ok" if db_ok else "unreachable"
    return ok and db_ok, facts
