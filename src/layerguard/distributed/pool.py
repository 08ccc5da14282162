"""A pool of Ray actors that survives its actors: a dead one is replaced and its task re-queued.

Each actor holds something expensive (a model replica); tasks are keyed by content, and a
task's result is yielded once even if it was computed twice. The driver logs each actor's
progress (node, process, tasks and items done) at most every ``report_every_s`` seconds.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from layerguard.distributed.cluster import require_ray
from layerguard.errors import InvalidInputError


@dataclass
class ActorState:
    """One slot of the pool: its actor and what it has done."""

    slot: int
    handle: Any
    node: str = "?"
    pid: int = 0
    tasks: int = 0
    items: int = 0
    generation: int = 0  # replacements of this slot


@dataclass
class PoolStats:
    """What a pool did (for the log and the tests)."""

    replaced: int = 0
    duplicates: int = 0
    startup_s: float = 0.0  # waiting for replicas to load (at the start and for replacements)
    per_actor: list[dict[str, Any]] = field(default_factory=list)


class ReplacingPool:
    """Run keyed tasks on ``size`` actors made by ``make_actor``; replace actors that die.

    The actors must have ``ready()`` (returns ``{"node": ..., "pid": ...}`` once the replica is
    loaded) and the task method ``method(payload)``.

    Args:
        make_actor: Creates one actor handle (``Cls.options(...).remote(...)``).
        size: Actors kept busy.
        method: The actor method each task calls.
        log: Receives progress and replacement messages.
        max_replacements: Give up after this many dead actors (default: 2 per slot + 1).
        report_every_s: Per-actor progress at most this often.
        items: The number of items in a payload (for progress), default 1.
    """

    def __init__(
        self,
        make_actor: Callable[[], Any],
        size: int,
        method: str,
        *,
        log: Callable[[str], None] = lambda m: None,
        max_replacements: int | None = None,
        report_every_s: float = 15.0,
        items: Callable[[Any], int] = lambda p: 1,
    ) -> None:
        if size < 1:
            raise InvalidInputError(f"an actor pool needs at least one actor, got {size}")
        self.make_actor, self.size, self.method, self.log = make_actor, size, method, log
        self.max_replacements = 2 * size + 1 if max_replacements is None else max_replacements
        self.report_every_s, self.items = report_every_s, items
        self.actors: list[ActorState] = []
        self.stats = PoolStats()

    def _start(self, slots: list[int], generation: int = 0) -> list[ActorState]:
        """Create actors for ``slots`` at once and wait until every replica is loaded."""
        ray = require_ray()
        t0 = time.perf_counter()
        handles = [self.make_actor() for _ in slots]
        try:
            infos = ray.get([h.ready.remote() for h in handles])
        except ray.exceptions.RayActorError as exc:
            raise InvalidInputError(
                f"a worker could not load its replica: {_cause(exc)}",
                hint="check that every node has layerguard, the model and the same paths as the driver",
            ) from None
        self.stats.startup_s += time.perf_counter() - t0
        states = []
        for slot, handle, info in zip(slots, handles, infos, strict=True):
            state = ActorState(slot, handle, str(info.get("node", "?")), int(info.get("pid", 0)), generation=generation)
            self.log(f"actor {slot} ready on node {state.node} (pid {state.pid})")
            states.append(state)
        return states

    def pids(self) -> list[int]:
        """Process ids of the current actors (a test kills one)."""
        return [a.pid for a in self.actors]

    def map(self, tasks: Sequence[tuple[str, Any]]) -> Iterator[tuple[str, Any]]:
        """Yield ``(key, result)`` for every distinct key, in completion order."""
        ray = require_ray()
        queue: deque[tuple[str, Any]] = deque(dict(tasks).items())  # one task per key
        seen: set[str] = set()
        inflight: dict[Any, tuple[int, str, Any]] = {}
        self.actors = self._start(list(range(min(self.size, len(queue)))))
        last_report = time.monotonic()

        def submit(slot: int) -> None:
            if queue:
                key, payload = queue.popleft()
                ref = getattr(self.actors[slot].handle, self.method).remote(payload)
                inflight[ref] = (slot, key, payload)

        try:
            for a in self.actors:
                submit(a.slot)
            while inflight:
                ready, _ = ray.wait(list(inflight), num_returns=1)
                slot, key, payload = inflight.pop(ready[0])
                try:
                    result = ray.get(ready[0])
                except ray.exceptions.RayActorError as exc:
                    self._replace(slot, exc)
                    queue.appendleft((key, payload))
                    submit(slot)
                    continue
                a = self.actors[slot]
                a.tasks += 1
                a.items += self.items(payload)
                if key in seen:
                    self.stats.duplicates += 1
                else:
                    seen.add(key)
                    yield key, result
                submit(slot)
                if time.monotonic() - last_report >= self.report_every_s:
                    self.log(self.report())
                    last_report = time.monotonic()
            self.log(self.report())
        finally:
            self.stats.per_actor = [
                {"slot": a.slot, "node": a.node, "pid": a.pid, "tasks": a.tasks, "items": a.items} for a in self.actors
            ]
            for a in self.actors:
                ray.kill(a.handle)

    def _replace(self, slot: int, exc: BaseException) -> None:
        old = self.actors[slot]
        self.stats.replaced += 1
        if self.stats.replaced > self.max_replacements:
            raise InvalidInputError(
                f"{self.stats.replaced} actors died (last: {_cause(exc)})",
                hint="look at the workers' logs (ray logs); finished work is kept, rerun to resume",
            )
        self.log(f"actor {slot} (node {old.node}, pid {old.pid}) died: {_cause(exc)}; replacing it, re-queueing")
        require_ray().kill(old.handle)
        self.actors[slot] = self._start([slot], old.generation + 1)[0]

    def report(self) -> str:
        """Per-actor progress, one line."""
        return "actors: " + "; ".join(
            f"{a.slot}@{a.node}/pid {a.pid}: {a.tasks} task(s), {a.items} item(s)" for a in self.actors
        )


def _cause(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__


def actor_info() -> dict[str, Any]:
    """What ``ready()`` returns from inside an actor: its node address and process id."""
    import os

    ray = require_ray()
    return {"node": ray.util.get_node_ip_address(), "pid": os.getpid()}
