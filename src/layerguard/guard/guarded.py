"""GuardedModel: the one place where a guard meets a model.

Every path that puts a guard in front of a model goes through it: the service's JSON and
streaming endpoints, the red-team runner, guard evaluation and the corpus filter. The flow
is written once:

1. ``prepare``: a local backend prefills the prompt once and keeps the states the rings
   read (``Exchange.activations``) and its KV cache (``Exchange.prefill``);
2. the input verdict: the ``input`` rings, then the ``turn`` rings (:meth:`Guard.check`);
3. if allowed, generation, with the ``answer`` rings' stream monitors able to halt it;
4. each proposed tool call through the ``tool_call`` rings (the tool gate);
5. the final verdict: the input verdict combined with the answer rings' verdicts.

Offline (:meth:`GuardedModel.score_many`), the states come from one batched teacher-forced
pass over prompt + answer, which gives the same states as the served pass: the state at
``t_inst`` does not depend on what follows it in a causal model, and the answer tokens'
states are those the stream monitor reads. Nothing here picks a ring by class or name:
rings declare their ``stage`` and what they ``reads``.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from layerguard.errors import InvalidInputError
from layerguard.guard.backend import Backend, Chunk, GenerationParams, StreamMonitor
from layerguard.guard.pipeline import Guard, combine
from layerguard.guard.types import Decision, Exchange, GuardVerdict, RingVerdict, ToolCall

ToolDecision = Literal["allow", "block", "escalate"]


@dataclass
class GatedCall:
    """One proposed tool call and what the tool-call rings decided."""

    call: ToolCall
    decision: ToolDecision
    score: float = 0.0
    explanation: str = ""
    verdicts: list[RingVerdict] = field(default_factory=list)

    def report(self) -> dict[str, Any]:
        """The JSON form the service returns and audits."""
        out: dict[str, Any] = {"id": self.call.id, "name": self.call.name, "decision": self.decision}
        if self.verdicts:
            out["score"] = round(self.score, 6)
        out["explanation"] = self.explanation
        return out


@dataclass
class InputChecked:
    """Event: the input verdict (always the first event of :meth:`GuardedModel.respond`)."""

    verdict: GuardVerdict


@dataclass
class TextChunk:
    """Event: a piece of the answer."""

    text: str


@dataclass
class Halted:
    """Event: an answer ring's stream monitor stopped generation."""

    ring: str
    score: float | None


@dataclass
class Finished:
    """Event: the last one; the combined verdict and what the caller returns.

    Attributes:
        verdict: The input verdict combined with the answer rings' verdicts.
        text: The answer as generated ('' when the input was declined).
        finish_reason: ``stop``, ``length``, ``content_filter`` or ``tool_calls`` (set by the caller
            after gating tool calls).
        usage: Token counts reported by the backend.
        halted_by: The ring whose monitor halted generation, if any.
        monitor_score: The monitor's running score at the halt.
    """

    verdict: GuardVerdict
    text: str
    finish_reason: str
    usage: dict[str, int] = field(default_factory=dict)
    halted_by: str | None = None
    monitor_score: float | None = None
    released: bool = False  # answered with the refusal direction ablated (see GuardedModel.release_vector)


Event = InputChecked | TextChunk | Halted | Finished


@dataclass
class Outcome:
    """One finished exchange judged offline (:meth:`GuardedModel.score_many`)."""

    decision: Decision
    verdict: GuardVerdict  # input + answer rings combined
    input_verdict: GuardVerdict
    latency_ms: float

    @property
    def ring_scores(self) -> dict[str, float]:
        """Ring name -> score, every ring that ran."""
        return self.verdict.ring_scores

    @property
    def ring_flags(self) -> dict[str, bool]:
        """Ring name -> whether that ring alone would have stopped the exchange."""
        return {v.ring: v.decision != "allow" for v in self.verdict.rings}


@dataclass
class Answered:
    """One request answered by :meth:`GuardedModel.respond_many`: the text the caller gets."""

    text: str  # '' when the guard declined the request or stopped the answer
    decision: Decision
    verdict: GuardVerdict
    released: bool = False  # answered with the refusal direction ablated


class GuardedModel:
    """A guard in front of a backend.

    Args:
        guard: The rings.
        backend: What generates answers (``local`` or ``upstream``); None for a guard that
            only checks (the corpus filter, offline scoring with ``lm``).
        lm: The served model, for offline scoring of finished exchanges (defaults to the
            local backend's model).
    """

    def __init__(self, guard: Guard, backend: Backend | None = None, *, lm: Any | None = None) -> None:
        self.guard = guard
        self.backend = backend
        self.lm = lm if lm is not None else getattr(backend, "lm", None)

    @classmethod
    def load(cls, path: str | Path, lm: Any | None = None, *, backend: Backend | None = None) -> GuardedModel:
        """Load ``guard.yaml``; with ``lm`` and no backend, serve that model in-process."""
        from layerguard.guard.build import load_guard

        guard = load_guard(path, lm, text_only=lm is None and (backend is None or backend.text_only))
        if backend is None and lm is not None:
            backend = local_backend(guard, lm)
        return cls(guard, backend, lm=lm)

    @property
    def model_name(self) -> str:
        """The name clients use for the served model."""
        return self.backend.model_name if self.backend is not None else getattr(self.lm, "name", "")

    # ------------------------------------------------------------------ serving, one exchange

    def prepare(self, exchange: Exchange) -> None:
        """Let the backend run what precedes the input check (a local prefill) once per exchange."""
        if self.backend is not None and exchange.prefill is None and not exchange.activations:
            self.backend.prepare(exchange)

    def check(self, exchange: Exchange) -> GuardVerdict:
        """The input verdict of a request: prefill (local backend), then the input and turn rings."""
        self.prepare(exchange)
        return self.guard.check(exchange)

    def respond(
        self, exchange: Exchange, params: GenerationParams, *, verdict: GuardVerdict | None = None
    ) -> Iterator[Event]:
        """Check the request and, if allowed, generate: events in order, :class:`Finished` last.

        Args:
            exchange: The request.
            params: Sampling parameters.
            verdict: An input verdict the caller already has (e.g. an input escalation a
                reviewer approved, which the caller turned into ``allow``); None: check here.
        """
        if verdict is None:
            verdict = self.check(exchange)
        yield InputChecked(verdict)
        if verdict.decision != "allow":
            yield Finished(verdict, "", "content_filter")
            return
        if self.backend is None:
            raise InvalidInputError("this guarded model has no backend to generate with", hint="pass a backend")
        vector = self.release_vector(verdict)
        if vector is not None:
            params = replace(params, ablate=vector)  # the backend prefills again under the ablation
        parts: list[str] = []
        last = Chunk("")
        for chunk in self.backend.stream(exchange, params):
            last = chunk
            if chunk.halted_by:
                break
            if chunk.text:
                parts.append(chunk.text)
                yield TextChunk(chunk.text)
            if chunk.finish_reason:
                break
        text = "".join(parts)
        if last.halted_by:
            yield Halted(last.halted_by, last.monitor_score)
            halt = RingVerdict(
                ring=last.halted_by,
                score=min(1.0, max(0.0, last.monitor_score or 0.0)),
                decision="block",
                explanation="halted the answer while it streamed",
            )
            final = combine([*verdict.rings, halt], verdict.stopped_at, verdict.unavailable, verdict.latency_ms)
            yield Finished(final, text, "content_filter", last.usage, last.halted_by, last.monitor_score)
            return
        yield Finished(verdict, text, last.finish_reason or "stop", last.usage, released=vector is not None)

    def release_vector(self, verdict: GuardVerdict) -> Any:
        """The direction to ablate when the guard releases this allowed request, else None.

        Only with ``Guard.release`` on, only for an ``allow``, and only when a ring offered it
        (``details["release"]``: the latent ring reads low harm and a model leaning to refuse).
        """
        if not self.guard.release or verdict.decision != "allow" or self.backend is not None and self.backend.text_only:
            return None
        for v in verdict.rings:
            if v.details.get("release"):
                ring = self.guard.ring(v.ring)
                make = getattr(ring, "release_vector", None)
                if make is not None:
                    return make()
        return None

    def gate(self, exchange: Exchange, calls: Sequence[ToolCall], declared: set[str] | None = None) -> list[GatedCall]:
        """Pass each proposed tool call through the tool-call rings; a failing ring blocks the call.

        Args:
            exchange: The request that led to the calls.
            calls: The calls the model proposed.
            declared: Tool names the client offered; a call to any other tool is blocked.
        """
        out = []
        rings = self.guard.at("tool_call")
        for call in calls:
            if declared and call.name not in declared:
                out.append(GatedCall(call, "block", 1.0, f"tool {call.name!r} was not offered in the request"))
                continue
            if not rings:
                out.append(GatedCall(call, "allow", 0.0, "no tool-call ring configured"))
                continue
            probe = exchange.model_copy(update={"tool_calls": [call], "prefill": None})
            try:
                verdicts = self.guard.check_tool_call(probe)
            except Exception as exc:  # a failing gate must not let the call through
                out.append(GatedCall(call, "block", 1.0, f"tool gate failed: {type(exc).__name__}"))
                continue
            v = combine(verdicts, None, (), 0.0)
            decision: ToolDecision = v.decision if v.decision in ("allow", "escalate") else "block"
            why = "; ".join(r.explanation for r in verdicts if r.explanation)
            out.append(GatedCall(call, decision, v.score, why, verdicts))
        return out

    # ------------------------------------------------------------------ offline, many exchanges

    def score_many(
        self,
        exchanges: Sequence[Exchange],
        answers: Sequence[str | None],
        *,
        batch_size: int = 8,
        record_all: bool = True,
    ) -> list[Outcome]:
        """Judge finished exchanges as the service would have: one batched pass for the states.

        Args:
            exchanges: The requests.
            answers: The model's answer to each (None: judge the request only).
            batch_size: Exchanges per forward pass.
            record_all: Run every ring on every exchange (no early stop; answer rings even on
                declined requests) so each ring's own catch rate can be measured. The
                decision is the service's either way: the input decision, else a block by
                an answer ring.
        """
        self._fill_states(exchanges, answers, batch_size)
        if record_all:
            firsts = self.guard.check_many(exchanges)
        else:
            firsts = []
            for ex in exchanges:
                ex.response = None
                firsts.append(self.guard.check(ex))
        out = []
        for ex, ans, first in zip(exchanges, answers, firsts, strict=True):
            t0 = time.perf_counter()
            answer_verdicts: list[RingVerdict] = []
            if ans is not None and (record_all or first.decision == "allow"):
                ex.response = ans
                answer_verdicts = self.guard.check_answer(ex)
            ms = first.latency_ms + (time.perf_counter() - t0) * 1000
            final = combine([*first.rings, *answer_verdicts], first.stopped_at, first.unavailable, ms)
            decision: Decision = first.decision
            if decision == "allow" and any(v.decision == "block" for v in answer_verdicts):
                decision = "block"  # an answer ring can only stop the answer
            out.append(Outcome(decision, final, first, ms))
        return out

    def respond_many(
        self,
        exchanges: Sequence[Exchange],
        *,
        max_new_tokens: int = 64,
        batch_size: int = 8,
        progress: bool | None = False,
        desc: str = "generating",
    ) -> list[Answered]:
        """Answer many requests in batches (greedy), each decided as :meth:`respond` decides it.

        Requests the input rings decline get no generation; the others are answered in
        left-padded batches and their answers judged by the answer rings (a block stands for
        a halt: the same running score over the same tokens decides it). ``progress`` shows
        the generation's progress, labelled ``desc``.

        Raises:
            InvalidInputError: no local model to generate with.
        """
        if self.lm is None:
            raise InvalidInputError("respond_many generates with a local model", hint="pass lm= or a local backend")
        from layerguard.models.generate import generate

        firsts = self.score_many(exchanges, [None] * len(exchanges), batch_size=batch_size, record_all=False)
        todo = [i for i, o in enumerate(firsts) if o.decision == "allow"]
        plain = [i for i in todo if self.release_vector(firsts[i].verdict) is None]
        convs = [[{"role": m.role, "content": m.content} for m in exchanges[i].messages] for i in plain]
        texts = (
            generate(self.lm, convs, max_new_tokens=max_new_tokens, batch_size=batch_size, progress=progress, desc=desc)
            if plain
            else []
        )
        fresh = [Exchange(messages=exchanges[i].messages) for i in plain]
        judged = self.score_many(fresh, texts, batch_size=batch_size, record_all=False)
        out = [Answered("", o.decision, o.verdict) for o in firsts]
        for i, text, o in zip(plain, texts, judged, strict=True):
            out[i] = Answered(text if o.decision == "allow" else "", o.decision, o.verdict)
        released = [i for i in todo if i not in set(plain)]
        rel = self.answer_released(
            [exchanges[i] for i in released], [firsts[i] for i in released], max_new_tokens, batch_size
        )
        for i, a in zip(released, rel, strict=True):
            out[i] = a
        return out

    def answer_released(
        self, exchanges: Sequence[Exchange], firsts: Sequence[Outcome], max_new_tokens: int = 64, batch_size: int = 8
    ) -> list[Answered]:
        """Answer requests the guard released, with the release vector ablated, and judge the answers.

        The answer rings read the states of the ablated pass, as they would while streaming it.

        Args:
            exchanges: Requests whose input outcome (``firsts``) offers a release.
            firsts: Their input outcomes (:meth:`score_many` with no answer).
            max_new_tokens: Answer length.
            batch_size: Requests per batch.
        """
        from layerguard.models.generate import generate

        if not exchanges:
            return []
        if self.lm is None:
            raise InvalidInputError("releasing a request needs the local model", hint="pass lm= or a local backend")
        vector = self.release_vector(firsts[0].verdict)  # one release vector per guard
        convs = [[{"role": m.role, "content": m.content} for m in ex.messages] for ex in exchanges]
        with self._ablating(vector):
            texts = generate(self.lm, convs, max_new_tokens=max_new_tokens, batch_size=batch_size)
            judged = self.score_many(
                [Exchange(messages=ex.messages) for ex in exchanges], texts, batch_size=batch_size, record_all=False
            )
        out = []
        for text, first, o in zip(texts, firsts, judged, strict=True):
            answer = [v for v in o.verdict.rings if self._is_answer_ring(v.ring)]
            verdict = combine([*first.input_verdict.rings, *answer], None, o.verdict.unavailable, o.latency_ms)
            decision: Decision = "block" if any(v.decision == "block" for v in answer) else first.input_verdict.decision
            out.append(Answered(text if decision == "allow" else "", decision, verdict, released=True))
        return out

    def _is_answer_ring(self, name: str) -> bool:
        return any(r.name == name for r in self.guard.at("answer"))

    def _ablating(self, vector: Any) -> Any:
        """A context that projects ``vector`` out of the served model's residual stream (or does nothing)."""
        from contextlib import nullcontext

        if vector is None:
            return nullcontext()
        from layerguard.activations.interventions import ablate_direction

        if self.lm is None:
            raise InvalidInputError("releasing a request needs the local model", hint="pass lm= or a local backend")
        return ablate_direction(self.lm, vector)

    def _fill_states(self, exchanges: Sequence[Exchange], answers: Sequence[str | None], batch_size: int) -> None:
        if not self.guard.reads or self.lm is None:
            return
        from layerguard.guard.states import exchange_states

        convs = [[{"role": m.role, "content": m.content} for m in ex.messages] for ex in exchanges]
        states = exchange_states(
            self.lm, convs, [a or "" for a in answers], reads=self.guard.reads, batch_size=batch_size
        )
        for ex, st in zip(exchanges, states, strict=True):
            ex.activations = {**(ex.activations or {}), **st} or None


def stream_monitor(guard: Guard) -> StreamMonitor | None:
    """The first answer ring's stream monitor (what halts a local generation), if any."""
    for ring in guard.at("answer"):
        make = getattr(ring, "stream_monitor", None)
        if make is not None:
            monitor: StreamMonitor = make()
            return monitor
    return None


def local_backend(guard: Guard, lm: Any) -> Backend:
    """A local backend that keeps what the guard's rings read and runs its stream monitor."""
    from layerguard.guard.registry import build_backend

    backend: Backend = build_backend("local", lm=lm, reads=guard.reads, monitor=stream_monitor(guard))
    return backend
