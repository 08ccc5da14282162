"""``/v1/chat/completions`` and ``/v1/guard/check``: HTTP adapters over :class:`GuardedModel`.

The guard flow itself (prefill, input and turn rings, generation that an answer ring may
halt, tool-call gating) is :class:`~layerguard.guard.guarded.GuardedModel`'s, the same one
the red-team runner and guard evaluation use. This module adds what belongs to HTTP: rate
limits and token budgets, escalations and their approval, audit rows, metrics, and the
OpenAI JSON and SSE shapes. One request goes: :meth:`ChatHandler.prepare` ->
:meth:`ChatHandler.input_guard` -> a declined request is answered by :meth:`ChatHandler.decline`
-> :meth:`ChatHandler.generate` -> :meth:`ChatHandler.gate_tools` -> :meth:`ChatHandler.final_verdict`.
"""

from __future__ import annotations

import json
import logging
import weakref
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, field
from typing import Any

from fastapi.responses import Response, StreamingResponse

from layerguard.guard.backend import Backend, GenerationParams
from layerguard.guard.guarded import Finished, GuardedModel, Halted, TextChunk
from layerguard.guard.tool_calls import ToolCallFilter, openai_tool_call, split_tool_calls
from layerguard.guard.types import Exchange, GuardVerdict, Message, ToolCall
from layerguard.service.audit import Auditor, declined_reason, declined_text, prompt_hash, verdict_summary
from layerguard.service.auth import Authenticator, RequestCtx
from layerguard.service.config import ServiceConfig
from layerguard.service.metrics import Metrics
from layerguard.service.responses import (
    DONE,
    SseWriter,
    audit_detail,
    completion_body,
    data,
    sse_single,
    token_usage,
    wants_usage,
)
from layerguard.service.schemas import (
    ApiError,
    ChatRequest,
    GuardCheckRequest,
    dumps,
    error_body,
    generation_params,
    json_response,
    parse_body,
    to_messages,
)
from layerguard.service.transport import ClosingStreamingResponse, Once, closing

log = logging.getLogger("layerguard.service")


@dataclass
class GateResult:
    """Tool calls after the tool gate."""

    allowed: list[ToolCall] = field(default_factory=list)
    report: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Plan:
    """An admitted request: the exchange the model and the guard work on, and how to answer it."""

    exchange: Exchange
    req: ChatRequest | None = None
    params: GenerationParams | None = None
    declared: set[str] = field(default_factory=set)
    check_only: bool = False
    encoded: Any = None  # the local backend's PromptPositions (tokens after the template)
    verdict: GuardVerdict | None = None
    ext: dict[str, Any] = field(default_factory=dict)


def preview_text(messages: list[Message]) -> str:
    """What the audit preview shows: the last user message, else the last message."""
    return next((m.content for m in reversed(messages) if m.role == "user"), messages[-1].content if messages else "")


@dataclass
class Generation:
    """What the backend has produced so far for one request."""

    parts: list[str] = field(default_factory=list)
    finish_reason: str | None = None
    reported_usage: dict[str, int] = field(default_factory=dict)
    halted_by: str | None = None  # the answer ring whose monitor halted generation, if one did
    monitor_score: float | None = None

    @property
    def text(self) -> str:
        """The text generated so far."""
        return "".join(self.parts)

    def usage(self, messages: list[Message]) -> dict[str, int]:
        """Token usage (the backend's, else an estimate)."""
        return token_usage(self.reported_usage, messages, self.text)


def backend_failed(ctx: RequestCtx, exc: Exception) -> ApiError:
    """502 for a backend failure (logged with its traceback; the client gets no internals)."""
    log.error("backend failed for %s", ctx.request_id, exc_info=exc)
    what = type(exc).__name__
    if what == "UpstreamError":
        what = f"upstream error: {exc}"
    return ApiError(
        502, f"The model backend failed ({what}); request {ctx.request_id}", type="server_error", code="backend_error"
    )


def allowed(verdict: GuardVerdict) -> GuardVerdict:
    """The verdict to generate under: an approved escalation is answered as if allowed."""
    return verdict if verdict.decision == "allow" else verdict.model_copy(update={"decision": "allow"})


class ChatHandler:
    """Chat completions and guard checks: where the guard meets the model.

    Args:
        guarded: The guard in front of the model backend.
        config: Service settings (token limits, generation concurrency).
        metrics: The service's metrics.
        auth: Rate limits and token budgets.
        auditor: Audit rows and escalations.
    """

    def __init__(
        self,
        guarded: GuardedModel,
        config: ServiceConfig,
        metrics: Metrics,
        auth: Authenticator,
        auditor: Auditor,
    ) -> None:
        assert guarded.backend is not None, "the service needs a backend"
        self.guarded = guarded
        backend: Backend = guarded.backend
        self.backend = backend
        self.config = config
        self.metrics = metrics
        self.auth = auth
        self.auditor = auditor
        self.model_names = [backend.model_name, *config.model_aliases]

    # ------------------------------------------------------------------------- admission

    def check_model(self, model: str) -> None:
        """404 for a model this server does not serve."""
        if model not in self.model_names:
            raise ApiError(
                404,
                f"The model {model!r} does not exist; this server serves {', '.join(map(repr, self.model_names))}",
                code="model_not_found",
                param="model",
            )

    # ------------------------------------------------------------------------- the flow

    def prepare(self, ctx: RequestCtx, exchange: Exchange) -> None:
        """Let the backend prepare the exchange (a local model's prefill records activations)."""
        try:
            self.guarded.prepare(exchange)
        except ApiError:
            raise
        except Exception as exc:
            raise backend_failed(ctx, exc) from None

    def input_guard(self, exchange: Exchange) -> GuardVerdict:
        """The input verdict (conversation rings see the other rings' scores) and its metrics.

        The exchange was prepared already (batched by the scheduler, or :meth:`prepare`), so this
        is :meth:`GuardedModel.check` without its prepare step.
        """
        verdict = self.guarded.guard.check(exchange)
        self.metrics.guard_latency.observe(verdict.latency_ms / 1000)
        for v in verdict.rings:
            self.metrics.ring_latency.labels(v.ring).observe(v.latency_ms / 1000)
        return verdict

    def generate(
        self, exchange: Exchange, verdict: GuardVerdict, params: GenerationParams, gen: Generation
    ) -> Iterator[str]:
        """Yield the answer's text, recording it in ``gen``; stops when an answer ring halts it."""
        for event in self.guarded.respond(exchange, params, verdict=verdict):
            if isinstance(event, TextChunk):
                gen.parts.append(event.text)
                yield event.text
            elif isinstance(event, Halted):
                gen.halted_by, gen.monitor_score = event.ring, event.score
            elif isinstance(event, Finished):
                gen.finish_reason, gen.reported_usage = event.finish_reason, event.usage

    def record_halt(self, gen: Generation, ext: dict[str, Any]) -> None:
        """Count a halted generation and report the monitor in the ``layerguard`` extension."""
        self.metrics.halts.labels(gen.halted_by).inc()
        ext["halted_by"] = gen.halted_by
        ext["monitor_score"] = gen.monitor_score

    def gate_tools(self, ctx: RequestCtx, exchange: Exchange, calls: list[ToolCall], declared: set[str]) -> GateResult:
        """Pass each proposed call through the tool-call rings: allowed, blocked (removed) or escalated (withheld)."""
        out = GateResult()
        for gated in self.guarded.gate(exchange, calls, declared):
            for v in gated.verdicts:
                self.metrics.ring_latency.labels(v.ring).observe(v.latency_ms / 1000)
            if gated.explanation.startswith("tool gate failed"):
                log.error("tool gate failed for %s: %s", ctx.request_id, gated.explanation)
            entry = gated.report()
            if gated.decision == "escalate":
                entry["escalation_id"] = self.auditor.escalate(
                    ctx,
                    "tool_call",
                    f"tool call {gated.call.name!r}: {gated.explanation}",
                    {"tool_call": gated.call.model_dump(), "prompt_sha256": ctx.prompt_sha256, "preview": ctx.preview},
                )
            self.metrics.tool_calls.labels(gated.decision).inc()
            out.report.append(entry)
            if gated.decision == "allow":
                out.allowed.append(gated.call)
        return out

    def final_verdict(
        self,
        ctx: RequestCtx,
        verdict: GuardVerdict,
        finish: str,
        halted_by: str | None,
        usage: dict[str, int],
        ext: dict[str, Any],
    ) -> None:
        """Record an answered request: its audit row (committed) and its tokens against the key's budget."""
        self.auditor.audit(ctx, verdict.decision, 200, verdict=verdict, finish_reason=finish, halted_by=halted_by,
                           usage=usage, detail=audit_detail(ext))  # fmt: skip
        self.auth.charge(ctx, usage["total_tokens"])

    # ------------------------------------------------------------------- chat completions

    def admit_chat(self, ctx: RequestCtx, body: bytes) -> Plan:
        """Rate limit, parse and bound a chat request (runs in a worker thread; no model work)."""
        self.auth.rate_limit(ctx)
        req: ChatRequest = parse_body(body, ChatRequest)
        ctx.model = req.model
        self.check_model(req.model)
        messages = to_messages(req.messages)
        ctx.prompt_sha256 = prompt_hash(messages)
        ctx.preview = self.auditor.preview(preview_text(messages))
        exchange = Exchange(
            messages=messages,
            api_key=ctx.api_key,
            conversation_id=ctx.conversation_header or req.user,
            request_id=ctx.request_id,
            tools=[t.model_dump() for t in req.tools or []],
            tool_choice=req.tool_choice,
        )
        plan = Plan(exchange, req=req, params=generation_params(req, self.config))
        plan.declared = {t.function.name for t in req.tools or []}
        self.bound(plan)
        return plan

    def judge(self, ctx: RequestCtx, plan: Plan) -> Response | None:
        """The input verdict of a prepared chat request; the answer when it is declined, else None."""
        assert plan.req is not None
        plan.verdict = verdict = self.input_guard(plan.exchange)
        plan.ext = {"request_id": ctx.request_id, "verdict": verdict_summary(verdict)}
        if verdict.decision == "escalate":
            override = self.auditor.approved_override(ctx)
            if override is not None:
                plan.ext["escalation_override"] = override
        if verdict.decision != "allow" and "escalation_override" not in plan.ext:
            return self.decline(ctx, plan.req, verdict, plan.ext, plan.exchange.messages)
        return None

    def answer(self, ctx: RequestCtx, plan: Plan, release: Callable[[], None]) -> Response:
        """Generate the answer of an allowed request; ``release`` frees its generation permit.

        A stream releases it when it ends (however it ends); the other paths before returning.
        """
        assert plan.req is not None and plan.params is not None and plan.verdict is not None
        req, exchange, verdict, params = plan.req, plan.exchange, plan.verdict, plan.params
        once = Once(release)
        if not req.stream:
            try:
                return self.complete(ctx, req, exchange, verdict, params, plan.ext, plan.declared)
            finally:
                once()
        events = self.stream(ctx, req, exchange, verdict, params, plan.ext, plan.declared, once)
        weakref.finalize(events, once)  # a stream that never starts still frees its permit
        return ClosingStreamingResponse(
            closing(events), media_type="text/event-stream", headers={"Cache-Control": "no-cache"}
        )

    def decline(
        self, ctx: RequestCtx, req: ChatRequest, verdict: GuardVerdict, ext: dict[str, Any], messages: list[Message]
    ) -> Response:
        """Answer a request the input guard declined (escalations are created here)."""
        eid = None
        if verdict.decision == "escalate":
            eid = self.auditor.escalate_input(ctx, verdict, messages)
            ext["escalation_id"] = eid
        text = declined_text(verdict, eid, self.config.refusal)
        ext["declined"] = {"decision": verdict.decision, "category": verdict.category,
                           "reason": declined_reason(verdict), "request_id": ctx.request_id}  # fmt: skip
        usage = token_usage({}, messages, text)
        self.auditor.audit(ctx, verdict.decision, 200, verdict=verdict, finish_reason="content_filter", usage=usage,
                           detail={"escalation_id": eid} if eid else None)  # fmt: skip
        self.auth.charge(ctx, usage["total_tokens"])
        if not req.stream:
            return json_response(completion_body(ctx.request_id, req.model, text, [], "content_filter", usage, ext))
        return StreamingResponse(
            sse_single(ctx.request_id, req, text, "content_filter", usage, ext), media_type="text/event-stream"
        )

    def complete(
        self,
        ctx: RequestCtx,
        req: ChatRequest,
        exchange: Exchange,
        verdict: GuardVerdict,
        params: GenerationParams,
        ext: dict[str, Any],
        declared: set[str],
    ) -> Response:
        """Generate the whole answer, then gate its tool calls (a halted answer withholds its text)."""
        gen = Generation()
        try:
            for _ in self.generate(exchange, allowed(verdict), params, gen):
                pass
        except Exception as exc:
            raise backend_failed(ctx, exc) from None
        text = gen.text
        usage = gen.usage(exchange.messages)
        finish: str = gen.finish_reason or "stop"
        tool_calls: list[dict[str, Any]] = []
        if gen.halted_by:
            self.record_halt(gen, ext)
            finish, text = "content_filter", self.config.refusal  # the partial answer is withheld
        elif declared:
            # a whole answer that is a bare JSON call to a declared tool is gated as a call; a stream
            # has sent such text as content before it could be recognised, so streams parse tags only
            text, calls = split_tool_calls(text, declared)
            if calls:
                gate = self.gate_tools(ctx, exchange, calls, declared)
                ext["tool_calls"] = gate.report
                tool_calls = [openai_tool_call(c) for c in gate.allowed]
                finish = "tool_calls" if tool_calls else "content_filter"
        self.final_verdict(ctx, verdict, finish, gen.halted_by, usage, ext)
        return json_response(completion_body(ctx.request_id, req.model, text, tool_calls, finish, usage, ext))

    def stream(
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
        """The SSE events of a streamed answer (tool-call text is held back, then gated).

        The audit row is committed before ``data: [DONE]``; a client that goes away mid-stream
        gets a ``client_disconnected`` row. ``release`` frees the generation permit.
        """
        sse = SseWriter(ctx.request_id, req.model)
        filt = ToolCallFilter() if declared else None
        gen = Generation()
        try:
            yield sse.event({"role": "assistant", "content": ""})
            for text in self.generate(exchange, allowed(verdict), params, gen):
                out = filt.feed(text) if filt is not None else text
                if out:
                    yield sse.event({"content": out})
            usage = gen.usage(exchange.messages)
            finish: str = gen.finish_reason or "stop"
            if gen.halted_by:
                self.record_halt(gen, ext)
                finish = "content_filter"
            elif filt is not None:
                finish = yield from self._stream_tool_calls(ctx, exchange, filt, declared, ext, sse, finish)
            self.final_verdict(ctx, verdict, finish, gen.halted_by, usage, ext)
            yield sse.event({}, finish, layerguard=ext)
            if wants_usage(req):
                yield sse.usage(usage)
            yield DONE
        except Exception as exc:
            log.exception("stream %s failed", ctx.request_id)
            if not ctx.audited:
                try:
                    self.auditor.audit(ctx, "error", 500, verdict=verdict, detail={"error": type(exc).__name__})
                except Exception:
                    log.exception("audit write failed for %s", ctx.request_id)
            yield data(error_body(f"generation failed (request {ctx.request_id})", "server_error", "internal_error"))
            yield DONE
        finally:
            release()
            if not ctx.audited:  # the client went away mid-stream
                try:
                    usage = gen.usage(exchange.messages)
                    self.auditor.audit(ctx, verdict.decision, 499, verdict=verdict,
                                       finish_reason="client_disconnected", usage=usage)  # fmt: skip
                except Exception:
                    log.exception("audit write failed for %s", ctx.request_id)

    def _stream_tool_calls(
        self,
        ctx: RequestCtx,
        exchange: Exchange,
        filt: ToolCallFilter,
        declared: set[str],
        ext: dict[str, Any],
        sse: SseWriter,
        finish: str,
    ) -> Generator[bytes, None, str]:
        """Send the held-back text and the gated tool calls of a stream; returns the finish reason."""
        held, captured = filt.finish()
        rest, calls = split_tool_calls(captured)
        if held or rest:
            yield sse.event({"content": held + rest})
        if calls:
            gate = self.gate_tools(ctx, exchange, calls, declared)
            ext["tool_calls"] = gate.report
            if gate.allowed:
                finish = "tool_calls"
                yield sse.event({"tool_calls": [openai_tool_call(c, i) for i, c in enumerate(gate.allowed)]})
            else:
                finish = "content_filter"
        return finish

    # ------------------------------------------------------------------------ guard check

    def admit_check(self, ctx: RequestCtx, body: bytes) -> Plan:
        """Rate limit, parse and bound a ``/v1/guard/check`` request (worker thread; no model work)."""
        self.auth.rate_limit(ctx)
        req: GuardCheckRequest = parse_body(body, GuardCheckRequest)
        if req.model is not None:
            self.check_model(req.model)
        ctx.model = req.model or self.backend.model_name
        if req.prompt is not None:
            messages = [Message(role="user", content=req.prompt)]
        else:
            assert req.messages is not None
            messages = to_messages(req.messages)
        ctx.prompt_sha256 = prompt_hash(messages)
        ctx.preview = self.auditor.preview(preview_text(messages))
        exchange = Exchange(
            messages=messages,
            api_key=ctx.api_key,
            conversation_id=req.conversation_id or ctx.conversation_header or req.user,
            request_id=ctx.request_id,
        )
        plan = Plan(exchange, check_only=True)
        self.bound(plan)
        return plan

    def check_answer(self, ctx: RequestCtx, plan: Plan) -> Response:
        """The verdict of a prepared check, audited (worker thread)."""
        verdict = self.input_guard(plan.exchange)
        self.auditor.audit(ctx, verdict.decision, 200, verdict=verdict)
        out = json.loads(dumps(verdict.model_dump()))
        out["request_id"] = ctx.request_id
        return json_response(out)

    # ------------------------------------------------------------------------ bounded work

    def bound(self, plan: Plan) -> None:
        """Refuse a prompt over ``max_prompt_tokens`` (after the chat template); clamp ``max_tokens``.

        Raises:
            ApiError: 400 naming the prompt's token count and the limit.
        """
        limit = self.config.max_prompt_tokens
        count = getattr(self.backend, "encode", None)
        if count is not None:
            plan.encoded = count(plan.exchange)
            n, how = plan.encoded.n_tokens, "after the chat template"
        else:  # a remote model's tokenizer is not known here: about 4 characters a token
            n, how = sum(len(m.content) for m in plan.exchange.messages) // 4, "estimated at 4 characters a token"
        if n > limit:
            raise ApiError(
                400,
                f"The prompt is {n:,} tokens ({how}); the limit is {limit:,} tokens (max_prompt_tokens). "
                "Shorten the messages.",
                code="context_length_exceeded",
                param="messages",
            )
        context = getattr(self.backend, "context_length", None)
        if plan.params is not None and context:
            room = int(context) - n
            if room < 1:
                raise ApiError(
                    400, f"The prompt ({n:,} tokens) leaves no room to answer in the model's context of "
                    f"{int(context):,} tokens", code="context_length_exceeded", param="messages",
                )  # fmt: skip
            plan.params.max_tokens = min(plan.params.max_tokens, room)
