"""The guard pipeline: rings grouped by stage, every verdict recorded, an optional early stop."""

from __future__ import annotations

import time
from collections.abc import Sequence

from layerguard.errors import InvalidInputError
from layerguard.guard.types import SEVERITY, STAGES, Exchange, GuardVerdict, Ring, RingVerdict, SecondOpinion, Stage


class Guard:
    """Compose rings like the layers of an onion: each catches what the inner ones miss.

    Each ring declares its ``stage``; :meth:`check` runs the ``input`` rings in order, then
    the ``turn`` rings (which see the input rings' scores), :meth:`check_answer` runs the
    ``answer`` rings on a finished answer and :meth:`check_tool_call` the ``tool_call``
    rings on one proposed call. Callers that serve a model use
    :class:`~layerguard.guard.guarded.GuardedModel`, which calls these in order.

    Args:
        rings: Rings in the order they run within their stage (cheap text rings first is usual).
        stop_early: Stop the input stage after the first ring that blocks.
        unavailable: Names of configured rings that cannot run on this backend (recorded
            in every verdict so a caller knows what was not checked).
        release: Answer requests that a ring offers to release (``details["release"]`` in its
            verdict, e.g. the latent ring: low harm, high refusal intent) with that ring's
            ``release_vector()`` ablated (see :class:`~layerguard.guard.guarded.GuardedModel`).
        second_opinions: Cascade steps (:class:`~layerguard.guard.types.SecondOpinion`): a
            ring's block or rewrite is overruled when another input ring reads the request as
            confidently harmless. A step whose rings are not both present (e.g. the latent
            ring on a text-only backend) does nothing.
    """

    def __init__(
        self,
        rings: Sequence[Ring],
        *,
        stop_early: bool = True,
        unavailable: Sequence[str] = (),
        release: bool = False,
        second_opinions: Sequence[SecondOpinion] = (),
    ) -> None:
        for ring in rings:
            _check_declarations(ring)
        self.rings = list(rings)
        self.second_opinions = list(second_opinions)
        self.stop_early = stop_early
        self.unavailable = list(unavailable)
        self.release = release

    def ring(self, name: str) -> Ring | None:
        """The ring called ``name`` (None when there is none)."""
        return next((r for r in self.rings if r.name == name), None)

    @property
    def names(self) -> list[str]:
        """Ring names in order."""
        return [r.name for r in self.rings]

    def at(self, stage: Stage) -> list[Ring]:
        """The rings of one stage, in order."""
        return [r for r in self.rings if r.stage == stage]

    @property
    def reads(self) -> list[str]:
        """Every state any ring reads (stable read names), deduplicated, in ring order."""
        return list(dict.fromkeys(name for r in self.rings for name in r.reads))

    def check(self, exchange: Exchange) -> GuardVerdict:
        """Judge a request: the input rings, then the turn rings, combined (most severe wins).

        Turn rings run always (a blocked turn still counts towards a burst of blocked
        attempts) and see the input rings' scores in ``exchange.turn_scores`` and their
        combined decision in ``exchange.turn_decision``.
        """
        t0 = time.perf_counter()
        verdicts: list[RingVerdict] = []
        stopped_at = None
        for ring in self.at("input"):
            verdict = ring.check(exchange)
            verdicts.append(verdict)
            if self.stop_early and verdict.decision == "block" and ring.name not in self._awaiting_opinion:
                stopped_at = ring.name
                break
        verdicts = self.apply_second_opinions(verdicts)
        self._finish_turn(exchange, verdicts, stopped_at)
        return combine(verdicts, stopped_at, self.unavailable, (time.perf_counter() - t0) * 1000)

    def check_many(self, exchanges: Sequence[Exchange]) -> list[GuardVerdict]:
        """:meth:`check` for many exchanges, every ring on every exchange (no early stop).

        A ring with a ``check_many(exchanges)`` method (e.g. one that embeds all texts in
        one encoder call) judges the whole batch at once; the others go one by one. The
        decisions equal :meth:`check`'s: an early stop only skips rings after a block.
        """
        t0 = time.perf_counter()
        per: list[list[RingVerdict]] = [[] for _ in exchanges]
        for ring in self.at("input"):
            batch = getattr(ring, "check_many", None)
            got = batch(list(exchanges)) if batch is not None else [ring.check(ex) for ex in exchanges]
            for verdicts, v in zip(per, got, strict=True):
                verdicts.append(v)
        out = []
        for ex, verdicts in zip(exchanges, per, strict=True):
            verdicts = self.apply_second_opinions(verdicts)
            self._finish_turn(ex, verdicts, None)
            out.append(combine(verdicts, None, self.unavailable, 0.0))
        ms = (time.perf_counter() - t0) * 1000 / max(1, len(exchanges))
        for v in out:
            v.latency_ms = ms
        return out

    @property
    def _awaiting_opinion(self) -> set[str]:
        """Input rings whose blocks wait for a second opinion (no early stop on them)."""
        names = {r.name for r in self.at("input")}
        return {so.ring for so in self.second_opinions if so.ring in names and so.by in names}

    def apply_second_opinions(self, verdicts: list[RingVerdict]) -> list[RingVerdict]:
        """``verdicts`` with every block or rewrite overruled whose second opinion reads the request as harmless."""
        if not self.second_opinions:
            return verdicts
        by_ring = {v.ring: v for v in verdicts}
        out = list(verdicts)
        for so in self.second_opinions:
            first, second = by_ring.get(so.ring), by_ring.get(so.by)
            if first is None or second is None or first.decision not in ("block", "rewrite"):
                continue
            if second.score >= so.below:
                continue
            why = f"{so.by} score {second.score:.3f} < {so.below:.3f}: read as harmless"
            overruled = first.model_copy(
                update={
                    "decision": "allow",
                    "rewrite": None,
                    "explanation": f"{first.explanation}; overruled by a second opinion ({why})".lstrip("; "),
                    "details": {**first.details, "overruled": {"was": first.decision, "by": so.by, "below": so.below}},
                }
            )
            out[out.index(first)] = overruled
            by_ring[so.ring] = overruled
        return out

    def _finish_turn(self, exchange: Exchange, verdicts: list[RingVerdict], stopped_at: str | None) -> None:
        """Append the tool-call rings' verdicts (calls carried by the request) and the turn rings'."""
        if exchange.tool_calls and stopped_at is None:
            verdicts.extend(self.check_tool_call(exchange))
        turn = self.at("turn")
        if turn:
            first = combine(verdicts, stopped_at, self.unavailable, 0.0)
            # a score overruled by a second opinion adds no conversation risk
            counted = {v.ring: v.score for v in verdicts if "overruled" not in v.details}
            exchange.turn_scores = {**exchange.turn_scores, **counted}
            exchange.turn_decision = first.decision
            verdicts.extend(r.check(exchange) for r in turn)

    def check_answer(self, exchange: Exchange) -> list[RingVerdict]:
        """The answer rings' verdicts on ``exchange.response`` (empty without answer rings)."""
        return [r.check(exchange) for r in self.at("answer")]

    def check_tool_call(self, exchange: Exchange) -> list[RingVerdict]:
        """The tool-call rings' verdicts on ``exchange.tool_calls`` (one call is usual)."""
        return [r.check(exchange) for r in self.at("tool_call")]


def _check_declarations(ring: Ring) -> None:
    """A ring must say when it runs and what it reads (see :class:`~layerguard.guard.types.Ring`)."""
    name = getattr(ring, "name", type(ring).__name__)
    stage = getattr(ring, "stage", None)
    if stage not in STAGES:
        raise InvalidInputError(
            f"ring {name!r} declares no valid stage (got {stage!r})",
            hint=f"set the class attribute stage to one of {', '.join(STAGES)}",
        )
    if not isinstance(getattr(ring, "reads", None), tuple):
        raise InvalidInputError(
            f"ring {name!r} does not declare what it reads", hint="set reads = () for a text ring, or read names"
        )


def combine(
    verdicts: Sequence[RingVerdict], stopped_at: str | None, unavailable: Sequence[str], latency_ms: float
) -> GuardVerdict:
    """The combined verdict of several ring verdicts: the most severe decision, the highest score.

    A verdict overruled by a second opinion is kept in ``rings`` but its score does not count.
    """
    if not verdicts:
        return GuardVerdict(decision="allow", score=0.0, rings=[], unavailable=list(unavailable), latency_ms=latency_ms)
    counted = [v for v in verdicts if "overruled" not in v.details] or list(verdicts)
    worst = max(counted, key=lambda v: (SEVERITY[v.decision], v.score))
    rewrite = next((v.rewrite for v in verdicts if v.decision == "rewrite" and v.rewrite), None)
    return GuardVerdict(
        decision=worst.decision,
        score=max(v.score for v in counted),
        category=worst.category if worst.decision != "allow" else None,
        rings=list(verdicts),
        stopped_at=stopped_at,
        unavailable=list(unavailable),
        latency_ms=latency_ms,
        rewrite=rewrite,
    )
