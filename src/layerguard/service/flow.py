"""The asynchronous flow of the two POST endpoints: no request waits for the model in a thread.

A request goes through :class:`~layerguard.service.chat.ChatHandler`'s synchronous steps in
worker threads (parsing, token counting, the guard's rings, generation), but every wait for
the model is an ``await`` on the event loop: its prefill is queued on the
:class:`~layerguard.service.scheduler.ModelScheduler` (batched with the others), and an
allowed chat request awaits a generation permit (:class:`~layerguard.service.scheduler.AsyncGate`)
before a thread starts reading its answer. Only the answers being generated (at most
``generation_concurrency``) hold a worker thread, and only while the model decodes them.
Full queues and waits past ``queue_timeout_s`` are answered with 503 and ``Retry-After``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, cast

from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from layerguard.service.auth import RequestCtx
from layerguard.service.chat import ChatHandler, Plan, backend_failed
from layerguard.service.config import ServiceConfig
from layerguard.service.metrics import Metrics
from layerguard.service.scheduler import AsyncGate, DeadlineExceeded, ModelScheduler, Overloaded
from layerguard.service.schemas import ApiError
from layerguard.service.transport import Once

DEFAULT_LOCAL_STREAMS = 8
"""Answers a local model decodes at once when ``generation_concurrency`` is not set."""


def busy(exc: Overloaded | DeadlineExceeded, deadline_s: float) -> ApiError:
    """503 with ``Retry-After`` for a full queue or a wait past the deadline."""
    if isinstance(exc, Overloaded):
        wait = str(math.ceil(exc.retry_after))
        return ApiError(503, f"Server busy: {exc}; retry in {wait} s", type="server_error", code="overloaded",
                        headers={"Retry-After": wait})  # fmt: skip
    return ApiError(
        503, f"Server busy: {exc} (queue_timeout_s = {deadline_s:g}); retry later", type="server_error",
        code="timeout", headers={"Retry-After": "5"},
    )  # fmt: skip


def batchable(backend: object) -> bool:
    """Whether a backend offers the batched steps the scheduler drives (the local backend does)."""
    return all(callable(getattr(backend, m, None)) for m in ("prefill_batch", "start_decode", "decode_step"))


class Dispatcher:
    """Runs a request's steps: threads for work, awaits for the model.

    Args:
        handler: The synchronous steps.
        config: Queue bounds, batching and deadlines.
        metrics: Where queue depth and batch sizes are reported.
    """

    def __init__(self, handler: ChatHandler, config: ServiceConfig, metrics: Metrics) -> None:
        self.handler = handler
        self.config = config
        backend = handler.backend
        local = batchable(backend)
        streams = config.generation_concurrency or (DEFAULT_LOCAL_STREAMS if local else None)
        self.scheduler: ModelScheduler | None = None
        if local:
            self.scheduler = ModelScheduler(
                cast(Any, backend),
                max_queue=config.max_queue,
                batch_wait_ms=config.batch_wait_ms,
                token_budget=config.prefill_token_budget,
                max_batch=config.max_batch,
                max_streams=streams or DEFAULT_LOCAL_STREAMS,
                deadline_s=config.queue_timeout_s,
            )
            sched = self.scheduler
            metrics.queue_depth.set_function(lambda: sched.queue_depth)
        self.gate = AsyncGate(streams, config.max_queue) if streams else None
        if self.gate is not None:
            gate = self.gate
            metrics.generation_waiting.set_function(lambda: gate.waiting)

    def close(self) -> None:
        """Stop the model thread."""
        if self.scheduler is not None:
            self.scheduler.close()

    async def chat(self, ctx: RequestCtx, body: bytes) -> Response:
        """``/v1/chat/completions``: admit, prefill (queued), guard, then generate under a permit."""
        h = self.handler
        plan: Plan = await run_in_threadpool(h.admit_chat, ctx, body)
        await self.prepare(ctx, plan)
        declined: Response | None = await run_in_threadpool(h.judge, ctx, plan)
        if declined is not None:
            return declined
        release = Once(await self.permit())
        try:
            response: Response = await run_in_threadpool(h.answer, ctx, plan, release)
        except BaseException:
            release()
            raise
        return response

    async def check(self, ctx: RequestCtx, body: bytes) -> Response:
        """``/v1/guard/check``: admit, prefill (queued, stopped after the last layer read), guard."""
        h = self.handler
        plan: Plan = await run_in_threadpool(h.admit_check, ctx, body)
        await self.prepare(ctx, plan)
        response: Response = await run_in_threadpool(h.check_answer, ctx, plan)
        return response

    async def prepare(self, ctx: RequestCtx, plan: Plan) -> None:
        """The backend's prefill: awaited on the scheduler (local model) or run in a thread."""
        if self.scheduler is None:
            await run_in_threadpool(self.handler.prepare, ctx, plan.exchange)
            return
        backend = self.scheduler.backend
        if plan.check_only and not backend.layers:
            return  # the guard reads no state: a check needs no forward pass
        try:
            await self.scheduler.aprefill(
                plan.exchange, plan.encoded, keep_cache=not plan.check_only, deadline_s=self.config.queue_timeout_s
            )
        except (Overloaded, DeadlineExceeded) as exc:
            raise busy(exc, self.config.queue_timeout_s) from None
        except Exception as exc:
            raise backend_failed(ctx, exc) from None

    async def permit(self) -> Callable[[], None]:
        """A generation permit (what frees it is returned)."""
        if self.gate is None:
            return _nothing
        try:
            await self.gate.acquire(self.config.queue_timeout_s)
        except (Overloaded, DeadlineExceeded) as exc:
            raise busy(exc, self.config.queue_timeout_s) from None
        return self.gate.release


def _nothing() -> None:
    return None
