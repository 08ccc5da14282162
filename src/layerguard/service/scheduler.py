"""The model scheduler: one thread runs the local model; requests wait in queues, not in threads.

A local model is one set of weights on a few cores: running two forward passes at once only
makes both slower, and holding a lock across a request's whole life (prefill, guard,
generation) serialises everything behind the slowest stream. Instead one model thread
(:class:`ModelScheduler`) takes work from two queues:

* **prefills** (every guard check and every chat completion starts with one): the thread waits
  a few milliseconds for more to arrive, then runs up to ``token_budget`` padded tokens of
  them as one batched forward pass (:meth:`LocalBackend.prefill_batch`). A check that needs
  no generation stops after the deepest layer its rings read.
* **streams**: the answers being generated, at most ``max_streams`` at once, advance together,
  one token per step in one batched forward pass (:meth:`LocalBackend.decode_step`).

The thread alternates: one prefill batch, one decoding step. The HTTP side never parks a
worker thread waiting for its turn: it awaits :meth:`ModelScheduler.aprefill` (an asyncio
future resolved by the model thread) and :class:`AsyncGate` (the generation permits). Both
queues are bounded (:class:`Overloaded`: 503 with ``Retry-After``), and a request that waited
longer than its deadline is dropped (:class:`DeadlineExceeded`). A request asking for an
ablation (``GenerationParams.ablate``) is prefilled and decoded alone.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from layerguard.guard.backend import Chunk, GenerationParams
from layerguard.guard.types import Exchange

if TYPE_CHECKING:
    from layerguard.guard.backends.local import Decoding, LocalBackend
    from layerguard.models.positions import PromptPositions

log = logging.getLogger("layerguard.service")


class Overloaded(Exception):
    """The queue is full; the client should retry after ``retry_after`` seconds."""

    def __init__(self, what: str, retry_after: float) -> None:
        super().__init__(what)
        self.retry_after = max(1.0, retry_after)


class DeadlineExceeded(Exception):
    """A request waited longer than its deadline for the model."""


@dataclass
class _Prefill:
    exchange: Exchange
    encoded: PromptPositions | None
    keep_cache: bool
    ablate: Any
    deadline: float
    future: Future[None] = field(default_factory=Future)

    @property
    def tokens(self) -> int:
        return len(self.encoded.input_ids) if self.encoded is not None else 256


@dataclass
class _Stream:
    exchange: Exchange
    params: GenerationParams
    deadline: float
    out: queue.SimpleQueue[Any] = field(default_factory=queue.SimpleQueue)
    state: Decoding | None = None
    cancelled: bool = False


class ModelScheduler:
    """Batch a local backend's prefills and decoding steps on one model thread.

    Args:
        backend: The local backend (its ``prepare`` and ``stream`` are routed here).
        max_queue: Prefills (and streams) that may wait at once; more get :class:`Overloaded`.
        batch_wait_ms: How long the first waiting prefill waits for others to join its batch.
        token_budget: Padded tokens (rows x longest prompt) of one prefill batch.
        max_batch: Rows of one prefill batch.
        max_streams: Answers decoded at once (their steps are batched).
        deadline_s: Longest wait in a queue before a request is dropped.
    """

    def __init__(
        self,
        backend: LocalBackend,
        *,
        max_queue: int = 128,
        batch_wait_ms: float = 5.0,
        token_budget: int = 4096,
        max_batch: int = 32,
        max_streams: int = 8,
        deadline_s: float = 120.0,
    ) -> None:
        self.backend = backend
        self.max_queue = max_queue
        self.batch_wait_s = batch_wait_ms / 1000
        self.token_budget = token_budget
        self.max_batch = max_batch
        self.max_streams = max_streams
        self.deadline_s = deadline_s
        self._cond = threading.Condition()
        self._prefills: deque[_Prefill] = deque()
        self._waiting: deque[_Stream] = deque()
        self._active: list[_Stream] = []
        self._stopped = False
        self._row_seconds = 0.5  # running estimate of one prefill row's cost (for Retry-After)
        self.batches: list[int] = []  # sizes of the last prefill batches (for tests and metrics)
        self._thread = threading.Thread(target=self._loop, name="layerguard-model", daemon=True)
        backend.attach(self)
        self._thread.start()

    # ------------------------------------------------------------------ submitting work

    def submit_prefill(
        self,
        exchange: Exchange,
        encoded: PromptPositions | None = None,
        *,
        keep_cache: bool = True,
        ablate: Any = None,
        deadline_s: float | None = None,
    ) -> Future[None]:
        """Queue a prefill; the future is done when ``exchange`` holds its reads (and cache).

        Raises:
            Overloaded: the prefill queue is full.
        """
        job = _Prefill(exchange, encoded, keep_cache, ablate, time.monotonic() + (deadline_s or self.deadline_s))
        with self._cond:
            if self._stopped:
                raise Overloaded("the model scheduler is stopped", 5.0)
            if len(self._prefills) >= self.max_queue:
                raise Overloaded(f"{len(self._prefills)} requests are waiting for the model", self.retry_after())
            self._prefills.append(job)
            self._cond.notify()
        return job.future

    async def aprefill(
        self,
        exchange: Exchange,
        encoded: PromptPositions | None = None,
        *,
        keep_cache: bool = True,
        deadline_s: float | None = None,
    ) -> None:
        """Await a prefill without holding a thread.

        Raises:
            Overloaded: the queue is full.
            DeadlineExceeded: not done within the deadline.
        """
        wait = deadline_s or self.deadline_s
        fut = self.submit_prefill(exchange, encoded, keep_cache=keep_cache, deadline_s=wait)
        try:
            await asyncio.wait_for(asyncio.wrap_future(fut), timeout=wait + 1.0)
        except TimeoutError:
            fut.cancel()
            raise DeadlineExceeded(f"the model did not take the request within {wait:g} s") from None

    def prepare(self, exchange: Exchange) -> None:
        """Blocking prefill (for callers in a thread: ``LocalBackend.prepare``)."""
        self.submit_prefill(exchange).result()

    def stream(self, exchange: Exchange, params: GenerationParams) -> Iterator[Chunk]:
        """The answer's chunks as the model thread decodes them (``LocalBackend.stream``).

        Raises:
            Overloaded: too many answers waiting to be decoded.
            DeadlineExceeded: the answer did not start within the deadline.
        """
        job = _Stream(exchange, params, time.monotonic() + self.deadline_s)
        with self._cond:
            if len(self._waiting) >= self.max_queue:
                raise Overloaded(f"{len(self._waiting)} answers are waiting for the model", self.retry_after())
            self._waiting.append(job)
            self._cond.notify()
        try:
            while True:
                item = job.out.get()
                if isinstance(item, BaseException):
                    raise item
                yield item
                if item.finish_reason is not None:
                    return
        finally:
            job.cancelled = True  # a consumer that stops early frees its row at the next step

    def retry_after(self) -> float:
        """Seconds a refused client should wait: the estimated time to drain the queue."""
        return min(60.0, max(1.0, len(self._prefills) * self._row_seconds))

    @property
    def queue_depth(self) -> int:
        """Prefills and answers waiting for the model."""
        return len(self._prefills) + len(self._waiting)

    def close(self) -> None:
        """Stop the model thread (pending work fails with :class:`Overloaded`)."""
        with self._cond:
            self._stopped = True
            self._cond.notify_all()
        self._thread.join(10)

    # ------------------------------------------------------------------ the model thread

    def _loop(self) -> None:
        while True:
            try:
                with self._cond:
                    batch = self._next_batch()
                    if batch is None:
                        return
                    self._admit_streams()
                if batch:
                    self._run_prefills(batch)
                if self._active:
                    self._step()
            except Exception:  # the model thread must outlive any one request
                log.exception("model scheduler iteration failed")

    def _next_batch(self) -> list[_Prefill] | None:
        """Wait for work; take the next prefill batch (may be empty when only streams need a step)."""
        while not self._stopped and not self._prefills and not self._waiting and not self._active:
            self._cond.wait()
        if self._stopped:
            for job in self._prefills:
                job.future.set_exception(Overloaded("the model scheduler stopped", 5.0))
            for s in [*self._waiting, *self._active]:
                s.out.put(Overloaded("the model scheduler stopped", 5.0))
            return None
        if self._prefills and not self._active:  # collect for a few milliseconds
            until = time.monotonic() + self.batch_wait_s
            while len(self._prefills) < self.max_batch and (left := until - time.monotonic()) > 0:
                self._cond.wait(left)
        batch: list[_Prefill] = []
        width = 0
        now = time.monotonic()
        while self._prefills and len(batch) < self.max_batch:
            job = self._prefills[0]
            if job.future.cancelled() or job.deadline < now:
                self._prefills.popleft()
                if not job.future.cancelled():
                    job.future.set_exception(DeadlineExceeded("the request waited too long for the model"))
                continue
            alone = job.ablate is not None
            over = (len(batch) + 1) * max(width, job.tokens) > self.token_budget
            if batch and (alone or batch[0].ablate is not None or over):
                break
            self._prefills.popleft()
            batch.append(job)
            width = max(width, job.tokens)
            if alone:
                break
        return batch

    def _admit_streams(self) -> None:
        now = time.monotonic()
        while self._waiting and len(self._active) < self.max_streams:
            s = self._waiting.popleft()
            if s.cancelled:
                continue
            if s.deadline < now:
                s.out.put(DeadlineExceeded("the answer waited too long for the model"))
                continue
            self._active.append(s)

    def _run_prefills(self, batch: list[_Prefill]) -> None:
        live = [j for j in batch if j.future.set_running_or_notify_cancel()]
        if not live:
            return
        t0 = time.perf_counter()
        try:
            self.backend.prefill_batch(
                [j.exchange for j in live],
                [j.encoded for j in live],
                keep_cache=[j.keep_cache for j in live],
                ablate=live[0].ablate,
            )
        except Exception as exc:
            if len(live) == 1:
                live[0].future.set_exception(exc)
                return
            for j in live:  # one bad row must not fail the others: run them alone
                self._run_one(j)
            return
        self._row_seconds = 0.8 * self._row_seconds + 0.2 * (time.perf_counter() - t0) / len(live)
        self.batches = [*self.batches[-99:], len(live)]
        for j in live:
            j.future.set_result(None)

    def _run_one(self, job: _Prefill) -> None:
        try:
            self.backend.prefill_batch([job.exchange], [job.encoded], keep_cache=[job.keep_cache], ablate=job.ablate)
        except Exception as exc:
            job.future.set_exception(exc)
        else:
            job.future.set_result(None)

    def _step(self) -> None:
        """One decoding step for every active answer (new ones start from their prefill)."""
        rows: list[_Stream] = []
        for s in self._active:
            if s.cancelled:
                continue
            if s.state is None:
                try:
                    s.state = self.backend.start_decode(s.exchange, s.params)
                except Exception as exc:
                    s.out.put(exc)
                    s.cancelled = True
                    continue
            rows.append(s)
        try:
            produced = self.backend.decode_step([s.state for s in rows if s.state is not None])
        except Exception as exc:
            log.exception("decoding step failed")
            for s in rows:
                s.out.put(exc)
                s.cancelled = True
            produced = []
        for s, chunks in zip(rows, produced, strict=False):
            for c in chunks:
                s.out.put(c)
        self._active = [s for s in self._active if not s.cancelled and not (s.state is not None and s.state.done)]


class AsyncGate:
    """At most ``n`` holders at once; others wait (asynchronously) in a bounded queue.

    ``release`` may be called from any thread (a stream ends in a worker thread).

    Args:
        n: Holders at once.
        max_waiting: Waiters beyond which :meth:`acquire` raises :class:`Overloaded`.
    """

    def __init__(self, n: int, max_waiting: int) -> None:
        self.n = n
        self.max_waiting = max_waiting
        self._held = 0
        self._lock = threading.Lock()
        self._waiters: deque[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = deque()

    async def acquire(self, timeout_s: float) -> None:
        """Wait for a permit.

        Raises:
            Overloaded: too many waiting.
            DeadlineExceeded: no permit within ``timeout_s``.
        """
        loop = asyncio.get_running_loop()
        with self._lock:
            if self._held < self.n and not self._waiters:
                self._held += 1
                return
            if len(self._waiters) >= self.max_waiting:
                raise Overloaded(f"{len(self._waiters)} requests are waiting to generate", 5.0)
            fut: asyncio.Future[None] = loop.create_future()
            self._waiters.append((loop, fut))
        try:
            await asyncio.wait_for(asyncio.shield(fut), timeout_s)
        except (TimeoutError, asyncio.CancelledError):
            with self._lock:
                if (loop, fut) in self._waiters:
                    self._waiters.remove((loop, fut))
                    fut.cancel()
                    granted = False
                else:
                    granted = True  # released to us just as we gave up: pass it on
            if granted:
                self.release()
            raise DeadlineExceeded(f"no generation slot within {timeout_s:g} s") from None

    def release(self) -> None:
        """Give the permit back (to the longest waiter, if any)."""
        with self._lock:
            while self._waiters:
                loop, fut = self._waiters.popleft()
                if not fut.cancelled():
                    loop.call_soon_threadsafe(_grant, fut)
                    return
            self._held -= 1

    @property
    def waiting(self) -> int:
        """Requests waiting for a permit."""
        return len(self._waiters)


def _grant(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)
