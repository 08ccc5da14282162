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

Conversation ring: the input guard runs through
:func:`~layerguard.guard.rings.conversation.check_with_conversation`, so a ``conversation``
ring sees the other rings' scores for the turn. The conversation is ``X-Conversation-Id``,
else the request's ``user`` field, else a hash chain of the user messages.

Audit: one record per authenticated request to the two POST endpoints (including refused
ones: ``invalid``, ``rate_limited``, ``error``), written and committed before the response
ends (before ``data: [DONE]`` for streams; a client that disconnects mid-stream gets a
``client_disconnected`` record). Keys are stored as SHA-256 hashes only.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import secrets
import threading
import time
import uuid
import weakref
from collections.abc import AsyncIterator, Callable, Generator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Literal

import anyio
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response, StreamingResponse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr, ValidationError, model_validator
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.types import Message as AsgiMessage

from layerguard.guard.backend import Backend, Chunk, GenerationParams
from layerguard.guard.pipeline import Guard
from layerguard.guard.rings.conversation import check_with_conversation
from layerguard.guard.types import Exchange, GuardVerdict, Message, ToolCall
from layerguard.service.config import ResolvedKey, ServiceConfig
from layerguard.service.storage import RateLimiter, Store, make_rate_limiter, retry_after_header
from layerguard.version import __version__

log = logging.getLogger("layerguard.service")

TOOL_OPEN = "<tool_call>"
_TOOL_RE = re.compile(r"<tool_call>(.*?)(?:</tool_call>|\Z)", re.DOTALL)


# ------------------------------------------------------------------------------------ errors


class ApiError(Exception):
    """An error answered as OpenAI-style JSON.

    Args:
        status: HTTP status.
        message: What was wrong (naming the field or value).
        type: OpenAI error type (``invalid_request_error``, ``authentication_error`` ...).
        code: Machine-readable code.
        param: The offending request field, if any.
        headers: Extra response headers (``Retry-After``).
    """

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = "invalid_request_error",
        code: str | None = None,
        param: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type
        self.code = code
        self.param = param
        self.headers = headers or {}


def error_body(message: str, type: str, code: str | None, param: str | None = None) -> dict[str, Any]:
    """The OpenAI error object."""
    return {"error": {"message": message, "type": type, "code": code, "param": param}}


def _json_default(obj: Any) -> Any:
    if hasattr(obj, "tolist"):
        try:
            value = obj.tolist()
            if not isinstance(value, list) or len(value) <= 64:
                return value
        except Exception:
            pass
    if isinstance(obj, set | frozenset | tuple):
        return list(obj)
    return str(obj)


def dumps(obj: Any) -> str:
    """JSON text of anything the service returns (tensors and unknown objects as strings)."""
    return json.dumps(obj, default=_json_default, ensure_ascii=False, allow_nan=False)


def json_response(obj: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """A JSON response that tolerates non-JSON values in verdict details."""
    return Response(dumps(obj), status_code=status, media_type="application/json", headers=headers)


# ------------------------------------------------------------------------- request schemas


class ContentPart(BaseModel):
    """A content part; only ``text`` parts are supported."""

    model_config = ConfigDict(extra="allow")

    type: StrictStr
    text: StrictStr | None = None


class ChatMessageIn(BaseModel):
    """A message of an OpenAI chat request."""

    model_config = ConfigDict(extra="allow")

    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: StrictStr | list[ContentPart] | None = None
    name: StrictStr | None = None
    tool_call_id: StrictStr | None = None
    tool_calls: list[dict[str, Any]] | None = None


class FunctionSpec(BaseModel):
    """A function offered as a tool."""

    model_config = ConfigDict(extra="allow")

    name: StrictStr = Field(min_length=1, max_length=128)
    description: StrictStr | None = None
    parameters: dict[str, Any] | None = None


class ToolSpec(BaseModel):
    """An entry of ``tools``."""

    model_config = ConfigDict(extra="allow")

    type: Literal["function"] = "function"
    function: FunctionSpec


class StreamOptions(BaseModel):
    """``stream_options``."""

    model_config = ConfigDict(extra="allow")

    include_usage: StrictBool = False


class ChatRequest(BaseModel):
    """An OpenAI chat-completions request (unknown fields are accepted and ignored)."""

    model_config = ConfigDict(extra="allow")

    model: StrictStr = Field(min_length=1)
    messages: list[ChatMessageIn] = Field(min_length=1)
    stream: StrictBool = False
    stream_options: StreamOptions | None = None
    max_tokens: StrictInt | None = Field(default=None, ge=1)
    max_completion_tokens: StrictInt | None = Field(default=None, ge=1)
    temperature: float | None = Field(default=None, ge=0.0, le=2.0)
    top_p: float | None = Field(default=None, gt=0.0, le=1.0)
    seed: StrictInt | None = None
    stop: StrictStr | list[StrictStr] | None = None
    n: StrictInt | None = Field(default=None, ge=1, le=1)
    tools: list[ToolSpec] | None = None
    tool_choice: Any = None
    user: StrictStr | None = None


class GuardCheckRequest(BaseModel):
    """Body of ``/v1/guard/check``: ``messages`` or ``prompt``."""

    model_config = ConfigDict(extra="forbid")

    messages: list[ChatMessageIn] | None = Field(default=None, min_length=1)
    prompt: StrictStr | None = None
    model: StrictStr | None = None
    conversation_id: StrictStr | None = None
    user: StrictStr | None = None

    @model_validator(mode="after")
    def _one_input(self) -> GuardCheckRequest:
        if (self.messages is None) == (self.prompt is None):
            raise ValueError("give exactly one of 'messages' and 'prompt'")
        return self


class ResolveRequest(BaseModel):
    """Body of ``POST /v1/escalations/{id}``."""

    model_config = ConfigDict(extra="forbid")

    action: Literal["approve", "reject"] | None = None
    status: Literal["approved", "rejected"] | None = None
    note: StrictStr = ""

    @model_validator(mode="after")
    def _one_action(self) -> ResolveRequest:
        if (self.action is None) == (self.status is None):
            raise ValueError("give 'action' (approve or reject)")
        return self

    @property
    def new_status(self) -> Literal["approved", "rejected"]:
        if self.status is not None:
            return self.status
        return "approved" if self.action == "approve" else "rejected"


def _validation_error(exc: ValidationError) -> ApiError:
    first = exc.errors()[0]
    loc = [str(x) for x in first["loc"]]
    # drop the union-branch markers pydantic appends ("str", "list[ContentPart]" ...)
    loc = [x for x in loc if not re.fullmatch(r"[a-z]+\[.*\]|str|int|float|bool|function-after\[.*\]", x)]
    param = ".".join(loc) or None
    if first["type"] == "missing":
        return ApiError(400, f"Missing required field '{param}'", code="missing_field", param=param)
    if param is None:
        return ApiError(400, f"Invalid request: {first['msg']}", code="invalid_value")
    return ApiError(400, f"Invalid value for '{param}': {first['msg']}", code="invalid_value", param=param)


def _message_text(m: ChatMessageIn, index: int) -> str:
    if m.content is None:
        return ""
    if isinstance(m.content, str):
        return m.content
    parts = []
    for j, p in enumerate(m.content):
        if p.type != "text" or p.text is None:
            raise ApiError(
                400,
                f"Invalid value for 'messages.{index}.content.{j}': only text content parts are supported, "
                f"got type {p.type!r}",
                code="invalid_value",
                param=f"messages.{index}.content.{j}",
            )
        parts.append(p.text)
    return "".join(parts)


def to_messages(messages: list[ChatMessageIn]) -> list[Message]:
    """Guard messages from OpenAI messages (``developer`` counts as ``system``)."""
    out = []
    for i, m in enumerate(messages):
        role = "system" if m.role == "developer" else m.role
        extra: dict[str, Any] = {"tool_calls": m.tool_calls} if m.tool_calls else {}
        out.append(
            Message(
                role=role,
                content=_message_text(m, i),
                name=m.name,
                tool_call_id=m.tool_call_id,
                provenance="tool" if role == "tool" else None,
                **extra,
            )
        )
    return out


# ------------------------------------------------------------------------------ tool calls


class ToolCallFilter:
    """Streams text while holding back anything from ``<tool_call>`` on.

    ``feed`` returns the text that is safe to send now; ``finish`` returns what is still held
    back and the captured tool-call text.
    """

    def __init__(self) -> None:
        self._pending = ""
        self._captured: str | None = None

    def feed(self, text: str) -> str:
        """Add generated text; return the part that can be sent now."""
        if self._captured is not None:
            self._captured += text
            return ""
        buf = self._pending + text
        i = buf.find(TOOL_OPEN)
        if i >= 0:
            self._captured, self._pending = buf[i:], ""
            return buf[:i]
        keep = 0
        for k in range(min(len(TOOL_OPEN) - 1, len(buf)), 0, -1):
            if TOOL_OPEN.startswith(buf[-k:]):
                keep = k
                break
        self._pending = buf[len(buf) - keep :]
        return buf[: len(buf) - keep]

    def finish(self) -> tuple[str, str]:
        """``(held-back plain text, captured tool-call text)``."""
        return self._pending, self._captured or ""


def _parse_call(body: str) -> ToolCall | None:
    try:
        obj = json.loads(body)
    except (json.JSONDecodeError, RecursionError):
        return None
    if not isinstance(obj, dict) or not isinstance(obj.get("name"), str) or not obj["name"]:
        return None
    args = obj.get("arguments", obj.get("parameters", {}))
    if isinstance(args, str):
        try:
            args = json.loads(args) if args.strip() else {}
        except json.JSONDecodeError:
            return None
    if args is None:
        args = {}
    if not isinstance(args, dict):
        return None
    return ToolCall(id="call_" + secrets.token_hex(12), name=obj["name"], arguments=args)


def split_tool_calls(text: str) -> tuple[str, list[ToolCall]]:
    """Split Qwen-format ``<tool_call>{"name": ..., "arguments": ...}</tool_call>`` blocks from text.

    Returns:
        The text outside well-formed blocks (malformed blocks stay in it) and the calls.
    """
    calls: list[ToolCall] = []
    rest: list[str] = []
    pos = 0
    for m in _TOOL_RE.finditer(text):
        rest.append(text[pos : m.start()])
        pos = m.end()
        call = _parse_call(m.group(1).strip())
        if call is None:
            rest.append(m.group(0))
        else:
            calls.append(call)
    rest.append(text[pos:])
    content = "".join(rest)
    return (content.strip() if calls else content), calls


def openai_tool_call(call: ToolCall, index: int | None = None) -> dict[str, Any]:
    """A call in OpenAI's ``tool_calls`` format."""
    out: dict[str, Any] = {
        "id": call.id,
        "type": "function",
        "function": {"name": call.name, "arguments": json.dumps(call.arguments, ensure_ascii=False)},
    }
    if index is not None:
        out["index"] = index
    return out


# --------------------------------------------------------------------------------- metrics


class Metrics:
    """Prometheus metrics of one app (own registry, so several apps can live in one process)."""

    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        self.requests = Counter(
            "layerguard_requests_total",
            "Guarded requests by endpoint and decision",
            ["endpoint", "decision"],
            registry=r,
        )
        self.latency = Histogram(
            "layerguard_request_latency_seconds",
            "End-to-end latency of guarded requests",
            ["endpoint"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120),
            registry=r,
        )
        self.guard_latency = Histogram(
            "layerguard_guard_latency_seconds",
            "Latency of the input guard (all rings)",
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
            registry=r,
        )
        self.ring_latency = Histogram(
            "layerguard_ring_latency_seconds",
            "Latency of each ring",
            ["ring"],
            buckets=(0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1),
            registry=r,
        )
        self.halts = Counter("layerguard_halts_total", "Generations halted by an output monitor", ["ring"], registry=r)
        self.rate_limited = Counter(
            "layerguard_rate_limited_total", "Requests refused by a rate limit", ["kind"], registry=r
        )
        self.errors = Counter(
            "layerguard_http_errors_total", "Error responses by status and code", ["status", "code"], registry=r
        )
        self.escalations = Counter("layerguard_escalations_total", "Escalations created", ["kind"], registry=r)
        self.tool_calls = Counter(
            "layerguard_tool_calls_total",
            "Tool calls proposed by the model, by gate decision",
            ["decision"],
            registry=r,
        )
        self.in_flight = Gauge("layerguard_in_flight_requests", "Requests being served", registry=r)


# --------------------------------------------------------------------------------- service


@dataclass
class RequestCtx:
    """Per-request facts threaded through the handlers."""

    request_id: str
    endpoint: str
    t0: float
    key: ResolvedKey
    api_key: str
    escalation_header: str | None = None
    conversation_header: str | None = None
    audited: bool = False
    prompt_sha256: str | None = None
    preview: str | None = None
    model: str | None = None


@dataclass
class GateResult:
    """Tool calls after the tool gate."""

    allowed: list[ToolCall] = field(default_factory=list)
    report: list[dict[str, Any]] = field(default_factory=list)


class Service:
    """State and logic behind the routes (kept apart from FastAPI so it is plain, testable code).

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
        self.backend = backend
        self.store = store
        self.config = config
        self.keys = {k.key_hash: k for k in config.resolve_keys(env)}
        self.limiter = rate_limiter if rate_limiter is not None else make_rate_limiter(store, config.rate_limiter)
        self.metrics = Metrics()
        self.model_names = [backend.model_name, *config.model_aliases]
        self.tool_gate = next((r for r in guard.rings if r.name == "tool_gate"), None)
        n = config.generation_concurrency or (1 if not backend.text_only else None)
        self._slots = threading.BoundedSemaphore(n) if n else None
        self._redact = [re.compile(p) for p in config.redact_patterns]

    # ---------------------------------------------------------------------------- basics

    def authenticate(self, request: Request, admin: bool = False) -> tuple[ResolvedKey, str]:
        """The key of a request (401 when missing or unknown, 403 when admin is needed)."""
        header = request.headers.get("authorization")
        if not header:
            raise ApiError(
                401,
                "Missing API key: send 'Authorization: Bearer <key>'",
                type="authentication_error",
                code="missing_api_key",
            )
        scheme, _, token = header.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise ApiError(
                401,
                "Malformed Authorization header: expected 'Bearer <key>'",
                type="authentication_error",
                code="invalid_api_key",
            )
        key = self.keys.get(hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest())
        if key is None:
            raise ApiError(401, "Incorrect API key provided", type="authentication_error", code="invalid_api_key")
        if admin and not key.admin:
            raise ApiError(
                403,
                f"API key {key.name!r} is not an admin key: escalations need an admin key",
                type="permission_error",
                code="permission_denied",
            )
        return key, token

    def rate_limit(self, ctx: RequestCtx) -> None:
        """Refuse with 429 (and Retry-After) when the key's budget is spent."""
        if ctx.key.rpm is None and ctx.key.tpm is None:
            return
        d = self.limiter.acquire(ctx.key.key_hash, ctx.key.rpm, ctx.key.tpm, time.time())
        if not d.allowed:
            self.metrics.rate_limited.labels(d.kind).inc()
            raise ApiError(
                429,
                f"Rate limit reached for API key {ctx.key.name!r}: {d.limit} {d.kind} per minute; "
                f"retry in {retry_after_header(d.retry_after)} s",
                type="rate_limit_error",
                code="rate_limit_exceeded",
                headers={"Retry-After": retry_after_header(d.retry_after)},
            )

    @contextmanager
    def slot(self) -> Iterator[None]:
        """A generation slot (503 after ``queue_timeout_s``)."""
        if self._slots is None:
            yield
            return
        if not self._slots.acquire(timeout=self.config.queue_timeout_s):
            raise ApiError(
                503, "Server busy: no generation slot free", type="server_error", code="overloaded",
                headers={"Retry-After": "5"},
            )  # fmt: skip
        try:
            yield
        finally:
            self._slots.release()

    def parse(self, body: bytes, schema: type[BaseModel]) -> Any:
        """Decode, parse and validate a JSON body (400 naming the problem)."""
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ApiError(
                400, f"Request body is not valid UTF-8 (byte {exc.start})", code="invalid_encoding"
            ) from None
        text = text.removeprefix("\ufeff")
        if not text.strip():
            raise ApiError(400, "Request body is empty: expected a JSON object", code="invalid_json")

        def bad_constant(name: str) -> Any:
            raise ValueError(f"{name} is not valid JSON")

        try:
            data = json.loads(text, parse_constant=bad_constant)
        except json.JSONDecodeError as exc:
            raise ApiError(
                400, f"Malformed JSON in request body: {exc.msg} (line {exc.lineno}, column {exc.colno})",
                code="invalid_json",
            ) from None  # fmt: skip
        except (ValueError, RecursionError) as exc:
            raise ApiError(400, f"Malformed JSON in request body: {exc}", code="invalid_json") from None
        if not isinstance(data, dict):
            raise ApiError(400, f"Request body must be a JSON object, got {type(data).__name__}", code="invalid_json")
        try:
            json.dumps(data, ensure_ascii=False).encode("utf-8")
        except RecursionError:
            raise ApiError(400, "Malformed JSON in request body: nested too deeply", code="invalid_json") from None
        except UnicodeEncodeError:
            raise ApiError(
                400, "Request body holds an invalid Unicode escape (a lone surrogate)", code="invalid_encoding"
            ) from None
        try:
            return schema.model_validate(data, strict=True)
        except ValidationError as exc:
            raise _validation_error(exc) from None

    def check_model(self, model: str) -> None:
        """404 for a model this server does not serve."""
        if model not in self.model_names:
            raise ApiError(
                404,
                f"The model {model!r} does not exist; this server serves {', '.join(map(repr, self.model_names))}",
                code="model_not_found",
                param="model",
            )

    def preview(self, text: str) -> str:
        """The audit preview of a prompt (redacted as configured)."""
        if self.config.redact_prompts:
            return "[redacted]"
        for pattern in self._redact:
            text = pattern.sub("[REDACTED]", text)
        return text[: self.config.preview_chars].replace("\x00", "\ufffd")

    @staticmethod
    def prompt_hash(messages: list[Message]) -> str:
        """SHA-256 of the conversation (roles and contents)."""
        canon = json.dumps([[m.role, m.content] for m in messages], ensure_ascii=False, separators=(",", ":"))
        return hashlib.sha256(canon.encode("utf-8")).hexdigest()

    # ------------------------------------------------------------------------- guard, audit

    def input_guard(self, exchange: Exchange) -> GuardVerdict:
        """The input verdict (conversation rings see the other rings' scores) and its metrics."""
        verdict = check_with_conversation(self.guard, exchange)
        self.metrics.guard_latency.observe(verdict.latency_ms / 1000)
        for v in verdict.rings:
            self.metrics.ring_latency.labels(v.ring).observe(v.latency_ms / 1000)
        return verdict

    def audit(
        self,
        ctx: RequestCtx,
        decision: str,
        status: int,
        *,
        verdict: GuardVerdict | None = None,
        finish_reason: str | None = None,
        halted_by: str | None = None,
        usage: dict[str, int] | None = None,
        detail: dict[str, Any] | None = None,
    ) -> int:
        """Write (and commit) the request's audit record; count it in the metrics."""
        ctx.audited = True
        latency = (time.perf_counter() - ctx.t0) * 1000
        rings = (
            [
                {"ring": v.ring, "score": round(v.score, 6), "decision": v.decision, "category": v.category,
                 "latency_ms": round(v.latency_ms, 3)}
                for v in verdict.rings
            ]
            if verdict is not None
            else None
        )  # fmt: skip
        rid = self.store.add_audit(
            ts=time.time(),
            request_id=ctx.request_id,
            endpoint=ctx.endpoint,
            api_key_hash=ctx.key.key_hash,
            key_name=ctx.key.name,
            model=ctx.model,
            decision=decision,
            score=verdict.score if verdict is not None else None,
            category=verdict.category if verdict is not None else None,
            rings=rings,
            latency_ms=latency,
            prompt_sha256=ctx.prompt_sha256,
            prompt_preview=ctx.preview,
            finish_reason=finish_reason,
            halted_by=halted_by,
            status=status,
            prompt_tokens=(usage or {}).get("prompt_tokens"),
            completion_tokens=(usage or {}).get("completion_tokens"),
            detail=json.loads(dumps(detail)) if detail else None,
        )
        self.metrics.requests.labels(ctx.endpoint, decision).inc()
        self.metrics.latency.labels(ctx.endpoint).observe(latency / 1000)
        return rid

    def audit_failure(self, ctx: RequestCtx, exc: ApiError) -> None:
        """Audit a request refused with a 4xx/5xx (never raises)."""
        if ctx.audited:
            return
        decision = {429: "rate_limited", 503: "overloaded"}.get(exc.status, "invalid" if exc.status < 500 else "error")
        try:
            self.audit(ctx, decision, exc.status, detail={"error": exc.code, "message": exc.message[:500]})
        except Exception:
            log.exception("audit write failed for %s", ctx.request_id)

    def verdict_summary(self, verdict: GuardVerdict) -> dict[str, Any]:
        """The verdict as returned to clients (without ring internals)."""
        return {
            "decision": verdict.decision,
            "score": round(verdict.score, 6),
            "category": verdict.category,
            "stopped_at": verdict.stopped_at,
            "unavailable": verdict.unavailable,
            "latency_ms": round(verdict.latency_ms, 3),
            "rings": [
                {"ring": v.ring, "decision": v.decision, "score": round(v.score, 6), "category": v.category,
                 "explanation": v.explanation, "latency_ms": round(v.latency_ms, 3)}
                for v in verdict.rings
            ],
        }  # fmt: skip

    def escalate(
        self, ctx: RequestCtx, kind: str, reason: str, payload: dict[str, Any], dedupe_key: str | None = None
    ) -> str:
        """Create an open escalation (or add a hit to the open one with the same ``dedupe_key``)."""
        eid = self.store.create_escalation(
            request_id=ctx.request_id,
            api_key_hash=ctx.key.key_hash,
            reason=reason,
            payload=json.loads(dumps({"kind": kind, "key_name": ctx.key.name, "model": ctx.model, **payload})),
            dedupe_key=dedupe_key,
        )
        self.metrics.escalations.labels(kind).inc()
        return eid

    def approved_override(self, ctx: RequestCtx) -> str | None:
        """The id of an approved input escalation for exactly these messages from this key, if sent."""
        eid = ctx.escalation_header
        if not eid:
            return None
        row = self.store.get_escalation(eid.strip())
        if row is None or row["status"] != "approved" or row["api_key_hash"] != ctx.key.key_hash:
            return None
        payload = row.get("payload") or {}
        if payload.get("kind") != "input" or payload.get("prompt_sha256") != ctx.prompt_sha256:
            return None
        return str(row["id"])

    def gate_tools(self, ctx: RequestCtx, exchange: Exchange, calls: list[ToolCall], declared: set[str]) -> GateResult:
        """Pass each proposed call through the tool gate: allowed, blocked (removed) or escalated (withheld)."""
        out = GateResult()
        for call in calls:
            entry: dict[str, Any] = {"id": call.id, "name": call.name}
            if declared and call.name not in declared:
                entry.update(decision="block", explanation=f"tool {call.name!r} was not offered in the request")
            elif self.tool_gate is None:
                entry.update(decision="allow", explanation="no tool_gate ring configured")
            else:
                probe = exchange.model_copy(
                    update={"tool_calls": [call], "meta": {k: v for k, v in exchange.meta.items() if k[:1] != "_"}}
                )
                try:
                    v = self.tool_gate.check(probe)
                    self.metrics.ring_latency.labels(v.ring).observe(v.latency_ms / 1000)
                    decision = v.decision if v.decision in ("allow", "escalate") else "block"
                    entry.update(decision=decision, score=round(v.score, 6), explanation=v.explanation)
                except Exception as exc:  # a failing gate must not let the call through
                    log.exception("tool gate failed")
                    entry.update(decision="block", explanation=f"tool gate failed: {type(exc).__name__}")
            if entry["decision"] == "escalate":
                entry["escalation_id"] = self.escalate(
                    ctx,
                    "tool_call",
                    f"tool call {call.name!r}: {entry.get('explanation', '')}",
                    {"tool_call": call.model_dump(), "prompt_sha256": ctx.prompt_sha256, "preview": ctx.preview},
                )
            self.metrics.tool_calls.labels(entry["decision"]).inc()
            out.report.append(entry)
            if entry["decision"] == "allow":
                out.allowed.append(call)
        return out

    # ------------------------------------------------------------------------------ chat

    def _prepare(self, ctx: RequestCtx, exchange: Exchange) -> None:
        try:
            self.backend.prepare(exchange)
        except ApiError:
            raise
        except Exception as exc:
            raise _backend_failed(ctx, exc) from None

    def declined_text(self, ctx: RequestCtx, verdict: GuardVerdict, escalation_id: str | None) -> str:
        """The assistant message of a declined request."""
        if verdict.decision == "rewrite" and verdict.rewrite:
            return verdict.rewrite
        why = (
            verdict.category
            or verdict.stopped_at
            or next((v.ring for v in verdict.rings if v.decision == verdict.decision), "policy")
        )
        if escalation_id is not None:
            return (
                f"This request needs human review before it can be answered (escalation {escalation_id}, "
                f"reason: {why}). Request id: {ctx.request_id}."
            )
        return f"I can't help with that request: it was declined by the content policy ({why}). Request id: " + (
            ctx.request_id + "."
        )

    def chat(self, ctx: RequestCtx, body: bytes) -> Response:
        """Handle a chat completion (runs in a worker thread)."""
        self.rate_limit(ctx)
        req: ChatRequest = self.parse(body, ChatRequest)
        ctx.model = req.model
        self.check_model(req.model)
        messages = to_messages(req.messages)
        ctx.prompt_sha256 = self.prompt_hash(messages)
        last_user = next((m.content for m in reversed(messages) if m.role == "user"), messages[-1].content)
        ctx.preview = self.preview(last_user)
        params = GenerationParams(
            max_tokens=min(
                req.max_completion_tokens or req.max_tokens or self.config.max_tokens_default,
                self.config.max_tokens_limit,
            ),
            temperature=req.temperature if req.temperature is not None else GenerationParams.temperature,
            top_p=req.top_p if req.top_p is not None else GenerationParams.top_p,
            seed=req.seed,
            stop=[req.stop] if isinstance(req.stop, str) else list(req.stop or []),
        )
        tools = [t.model_dump() for t in req.tools or []]
        exchange = Exchange(
            messages=messages,
            api_key=ctx.api_key,
            conversation_id=ctx.conversation_header or req.user,
            meta={"request_id": ctx.request_id, "tools": tools, "tool_choice": req.tool_choice},
        )
        declared = {t.function.name for t in req.tools or []}
        slot = self.slot()
        slot.__enter__()
        handed_over = False
        try:
            self._prepare(ctx, exchange)
            verdict = self.input_guard(exchange)
            ext: dict[str, Any] = {"request_id": ctx.request_id, "verdict": self.verdict_summary(verdict)}
            if verdict.decision == "escalate":
                override = self.approved_override(ctx)
                if override is not None:
                    ext["escalation_override"] = override
            if verdict.decision != "allow" and "escalation_override" not in ext:
                return self._declined(ctx, req, verdict, ext, messages)
            if req.stream:

                def _free_slot() -> None:
                    slot.__exit__(None, None, None)

                release = _Once(_free_slot)
                events = self._stream(ctx, req, exchange, verdict, params, ext, declared, release)
                weakref.finalize(events, release)  # a stream that never starts still frees its slot
                handed_over = True
                return _ClosingStreamingResponse(
                    _closing(events), media_type="text/event-stream", headers={"Cache-Control": "no-cache"}
                )
            return self._complete(ctx, req, exchange, verdict, params, ext, declared)
        finally:
            if not handed_over:
                slot.__exit__(None, None, None)

    def _declined(
        self, ctx: RequestCtx, req: ChatRequest, verdict: GuardVerdict, ext: dict[str, Any], messages: list[Message]
    ) -> Response:
        eid = None
        if verdict.decision == "escalate":
            reason = "; ".join(f"{v.ring}: {v.explanation}" for v in verdict.rings if v.decision == "escalate")
            payload: dict[str, Any] = {"prompt_sha256": ctx.prompt_sha256, "preview": ctx.preview,
                                       "verdict": self.verdict_summary(verdict)}  # fmt: skip
            if not self.config.redact_prompts:
                payload["messages"] = [{"role": m.role, "content": m.content} for m in messages]
            # a conversation that keeps escalating is one item for the reviewer, not one per turn
            conv = [v for v in verdict.rings if v.decision == "escalate" and v.ring == "conversation"]
            thread = conv[0].details.get("thread") if conv else None
            eid = self.escalate(ctx, "input", reason or "escalated", payload, dedupe_key=thread)
            ext["escalation_id"] = eid
        text = self.declined_text(ctx, verdict, eid)
        usage = _usage({}, messages, text)
        self.audit(ctx, verdict.decision, 200, verdict=verdict, finish_reason="content_filter", usage=usage,
                   detail={"escalation_id": eid} if eid else None)  # fmt: skip
        self.limiter.add_tokens(ctx.key.key_hash, usage["total_tokens"], time.time())
        if not req.stream:
            return json_response(_completion(ctx, req.model, text, [], "content_filter", usage, ext))
        return StreamingResponse(
            _sse_single(ctx, req, text, "content_filter", usage, ext), media_type="text/event-stream"
        )

    def _complete(
        self,
        ctx: RequestCtx,
        req: ChatRequest,
        exchange: Exchange,
        verdict: GuardVerdict,
        params: GenerationParams,
        ext: dict[str, Any],
        declared: set[str],
    ) -> Response:
        parts: list[str] = []
        last = Chunk("")
        try:
            for c in self.backend.stream(exchange, params):
                last = c
                if c.halted_by:
                    break
                parts.append(c.text)
                if c.finish_reason:
                    break
        except Exception as exc:
            raise _backend_failed(ctx, exc) from None
        text = "".join(parts)
        usage = _usage(last.usage, exchange.messages, text)
        finish: str = last.finish_reason or "stop"
        tool_calls: list[dict[str, Any]] = []
        if last.halted_by:
            self.metrics.halts.labels(last.halted_by).inc()
            ext["halted_by"] = last.halted_by
            ext["monitor_score"] = last.monitor_score
            finish, text = "content_filter", f"[response stopped by layerguard: {last.halted_by}]"
        elif declared:
            text, calls = split_tool_calls(text)
            if calls:
                gate = self.gate_tools(ctx, exchange, calls, declared)
                ext["tool_calls"] = gate.report
                tool_calls = [openai_tool_call(c) for c in gate.allowed]
                finish = "tool_calls" if tool_calls else "content_filter"
        self.audit(ctx, verdict.decision, 200, verdict=verdict, finish_reason=finish, halted_by=last.halted_by,
                   usage=usage, detail=_detail(ext))  # fmt: skip
        self.limiter.add_tokens(ctx.key.key_hash, usage["total_tokens"], time.time())
        return json_response(_completion(ctx, req.model, text, tool_calls, finish, usage, ext))

    def _stream(
        self,
        ctx: RequestCtx,
        req: ChatRequest,
        exchange: Exchange,
        verdict: GuardVerdict,
        params: GenerationParams,
        ext: dict[str, Any],
        declared: set[str],
        release: Callable[[], None],
    ) -> Generator[bytes, None, None]:
        cid, created = f"chatcmpl-{ctx.request_id}", int(time.time())
        filt = ToolCallFilter() if declared else None
        parts: list[str] = []
        last = Chunk("")
        usage: dict[str, int] = {}

        def event(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> bytes:
            choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
            obj = {"id": cid, "object": "chat.completion.chunk", "created": created, "model": req.model,
                   "choices": [choice], **extra}  # fmt: skip
            return f"data: {dumps(obj)}\n\n".encode()

        try:
            yield event({"role": "assistant", "content": ""})
            for c in self.backend.stream(exchange, params):
                last = c
                if c.halted_by:
                    break
                parts.append(c.text)
                out = filt.feed(c.text) if filt is not None else c.text
                if out:
                    yield event({"content": out})
                if c.finish_reason:
                    break
            text = "".join(parts)
            usage = _usage(last.usage, exchange.messages, text)
            finish: str = last.finish_reason or "stop"
            if last.halted_by:
                self.metrics.halts.labels(last.halted_by).inc()
                ext["halted_by"], ext["monitor_score"], finish = last.halted_by, last.monitor_score, "content_filter"
            elif filt is not None:
                held, captured = filt.finish()
                rest, calls = split_tool_calls(captured)
                if held or rest:
                    yield event({"content": held + rest})
                if calls:
                    gate = self.gate_tools(ctx, exchange, calls, declared)
                    ext["tool_calls"] = gate.report
                    if gate.allowed:
                        finish = "tool_calls"
                        yield event({"tool_calls": [openai_tool_call(c, i) for i, c in enumerate(gate.allowed)]})
                    else:
                        finish = "content_filter"
            self.audit(ctx, verdict.decision, 200, verdict=verdict, finish_reason=finish, halted_by=last.halted_by,
                       usage=usage, detail=_detail(ext))  # fmt: skip
            self.limiter.add_tokens(ctx.key.key_hash, usage["total_tokens"], time.time())
            yield event({}, finish, layerguard=ext)
            if req.stream_options is not None and req.stream_options.include_usage:
                obj = {"id": cid, "object": "chat.completion.chunk", "created": created, "model": req.model,
                       "choices": [], "usage": usage}  # fmt: skip
                yield f"data: {dumps(obj)}\n\n".encode()
            yield b"data: [DONE]\n\n"
        except Exception as exc:
            log.exception("stream %s failed", ctx.request_id)
            if not ctx.audited:
                try:
                    self.audit(ctx, "error", 500, verdict=verdict, detail={"error": type(exc).__name__})
                except Exception:
                    log.exception("audit write failed for %s", ctx.request_id)
            err = error_body(f"generation failed (request {ctx.request_id})", "server_error", "internal_error")
            yield f"data: {dumps(err)}\n\n".encode()
            yield b"data: [DONE]\n\n"
        finally:
            release()
            if not ctx.audited:  # the client went away mid-stream
                try:
                    text = "".join(parts)
                    self.audit(ctx, verdict.decision, 499, verdict=verdict, finish_reason="client_disconnected",
                               usage=_usage(last.usage, exchange.messages, text))  # fmt: skip
                except Exception:
                    log.exception("audit write failed for %s", ctx.request_id)

    # ---------------------------------------------------------------------- guard check

    def guard_check(self, ctx: RequestCtx, body: bytes) -> Response:
        """Handle ``/v1/guard/check`` (runs in a worker thread)."""
        self.rate_limit(ctx)
        req: GuardCheckRequest = self.parse(body, GuardCheckRequest)
        if req.model is not None:
            self.check_model(req.model)
        ctx.model = req.model or self.backend.model_name
        if req.prompt is not None:
            messages = [Message(role="user", content=req.prompt)]
        else:
            assert req.messages is not None
            messages = to_messages(req.messages)
        ctx.prompt_sha256 = self.prompt_hash(messages)
        ctx.preview = self.preview(next((m.content for m in reversed(messages) if m.role == "user"), ""))
        exchange = Exchange(
            messages=messages,
            api_key=ctx.api_key,
            conversation_id=req.conversation_id or ctx.conversation_header or req.user,
            meta={"request_id": ctx.request_id},
        )
        with self.slot():
            self._prepare(ctx, exchange)
            verdict = self.input_guard(exchange)
        self.audit(ctx, verdict.decision, 200, verdict=verdict)
        out = json.loads(dumps(verdict.model_dump()))
        out["request_id"] = ctx.request_id
        return json_response(out)


def _backend_failed(ctx: RequestCtx, exc: Exception) -> ApiError:
    """502 for a backend failure (logged with its traceback; the client gets no internals)."""
    log.error("backend failed for %s", ctx.request_id, exc_info=exc)
    what = type(exc).__name__
    if what == "UpstreamError":
        what = f"upstream error: {exc}"
    return ApiError(
        502, f"The model backend failed ({what}); request {ctx.request_id}", type="server_error", code="backend_error"
    )


class _RequestIdMiddleware:
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


class _ClosingStreamingResponse(StreamingResponse):
    """A streaming response that always closes its body iterator (normal end, error or disconnect)."""

    async def stream_response(self, send: Send) -> None:
        try:
            await super().stream_response(send)
        finally:
            aclose = getattr(self.body_iterator, "aclose", None)
            if aclose is not None:
                with anyio.CancelScope(shield=True):
                    await aclose()


class _Once:
    """Call a function at most once (from any thread)."""

    def __init__(self, fn: Callable[[], None]) -> None:
        self._fn: Callable[[], None] | None = fn
        self._lock = threading.Lock()

    def __call__(self) -> None:
        with self._lock:
            fn, self._fn = self._fn, None
        if fn is not None:
            fn()


async def _closing(it: Generator[bytes, None, None]) -> AsyncIterator[bytes]:
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


def _usage(reported: dict[str, int], messages: list[Message], text: str) -> dict[str, int]:
    """Token usage: the backend's, else an estimate (4 characters a token)."""
    prompt = reported.get("prompt_tokens")
    completion = reported.get("completion_tokens")
    if prompt is None:
        prompt = sum(len(m.content) for m in messages) // 4 + len(messages)
    if completion is None:
        completion = (len(text) + 3) // 4
    return {
        "prompt_tokens": int(prompt),
        "completion_tokens": int(completion),
        "total_tokens": int(prompt + completion),
    }


def _detail(ext: dict[str, Any]) -> dict[str, Any] | None:
    keys = ("tool_calls", "halted_by", "monitor_score", "escalation_override", "escalation_id")
    d = {k: ext[k] for k in keys if k in ext}
    return d or None


def _completion(
    ctx: RequestCtx,
    model: str,
    text: str,
    tool_calls: list[dict[str, Any]],
    finish: str,
    usage: dict[str, int],
    ext: dict[str, Any],
) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": text if (text or not tool_calls) else None}
    if tool_calls:
        message["tool_calls"] = tool_calls
    return {
        "id": f"chatcmpl-{ctx.request_id}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish}],
        "usage": usage,
        "layerguard": ext,
    }


def _sse_single(
    ctx: RequestCtx, req: ChatRequest, text: str, finish: str, usage: dict[str, int], ext: dict[str, Any]
) -> Iterator[bytes]:
    """A whole (declined) answer as an SSE stream."""
    cid, created = f"chatcmpl-{ctx.request_id}", int(time.time())
    base = {"id": cid, "object": "chat.completion.chunk", "created": created, "model": req.model}
    for delta, fin, extra in (
        ({"role": "assistant", "content": ""}, None, {}),
        ({"content": text}, None, {}),
        ({}, finish, {"layerguard": ext}),
    ):
        obj = {**base, "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": fin}], **extra}
        yield f"data: {dumps(obj)}\n\n".encode()
    if req.stream_options is not None and req.stream_options.include_usage:
        yield f"data: {dumps({**base, 'choices': [], 'usage': usage})}\n\n".encode()
    yield b"data: [DONE]\n\n"


# ------------------------------------------------------------------------------------ app


async def _read_body(request: Request, limit: int) -> bytes:
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

    app.add_middleware(_RequestIdMiddleware, in_flight=svc.metrics.in_flight)

    def ctx_for(request: Request, endpoint: str) -> RequestCtx:
        key, token = svc.authenticate(request)
        return RequestCtx(
            request_id=request.state.request_id,
            endpoint=endpoint,
            t0=time.perf_counter(),
            key=key,
            api_key=token,
            escalation_header=request.headers.get("x-layerguard-escalation"),
            conversation_header=request.headers.get("x-conversation-id"),
        )

    def guarded(fn: Callable[[RequestCtx, bytes], Response], ctx: RequestCtx, body: bytes) -> Response:
        try:
            return fn(ctx, body)
        except ApiError as exc:
            svc.audit_failure(ctx, exc)
            raise
        except Exception:
            svc.audit_failure(ctx, ApiError(500, "internal error", type="server_error", code="internal_error"))
            raise

    @app.post("/v1/chat/completions")
    async def chat_completions(request: Request) -> Response:
        ctx = ctx_for(request, "chat.completions")
        body = await _read_body(request, config.max_body_bytes)
        return await run_in_threadpool(guarded, svc.chat, ctx, body)

    @app.post("/v1/guard/check")
    async def guard_check(request: Request) -> Response:
        ctx = ctx_for(request, "guard.check")
        body = await _read_body(request, config.max_body_bytes)
        return await run_in_threadpool(guarded, svc.guard_check, ctx, body)

    @app.get("/v1/models")
    async def models(request: Request) -> Response:
        svc.authenticate(request)
        data = [{"id": m, "object": "model", "created": 0, "owned_by": "layerguard"} for m in svc.model_names]
        return json_response({"object": "list", "data": data})

    @app.get("/v1/escalations")
    async def list_escalations(request: Request, status: str = "open", limit: int = 100) -> Response:
        svc.authenticate(request, admin=True)
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
        admin, _ = svc.authenticate(request, admin=True)
        body = await _read_body(request, config.max_body_bytes)
        req: ResolveRequest = svc.parse(body, ResolveRequest)
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

    @app.get("/healthz")
    async def healthz() -> Response:
        return json_response({"status": "ok", "version": __version__})

    @app.get("/readyz")
    async def readyz() -> Response:
        def probe() -> tuple[bool, dict[str, Any]]:
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

        ok, facts = await run_in_threadpool(probe)
        facts["status"] = "ready" if ok else "not ready"
        facts["rings"] = svc.guard.names
        facts["unavailable_rings"] = svc.guard.unavailable
        return json_response(facts, status=200 if ok else 503)

    @app.get("/metrics")
    async def metrics() -> Response:
        return Response(generate_latest(svc.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return app
