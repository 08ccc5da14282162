"""The guard pipeline: rings in order, every verdict recorded, an optional early stop."""

from __future__ import annotations

import time
from collections.abc import Sequence

from layerguard.guard.types import SEVERITY, Exchange, GuardVerdict, Ring, RingVerdict


class Guard:
    """Compose rings like the layers of an onion: each catches what the inner ones miss.

    Args:
        rings: Rings in the order they run (cheap text rings first is usual).
        stop_early: Stop after the first ring that blocks (later rings are not run).
        unavailable: Names of configured rings that cannot run on this backend (recorded
            in every verdict so a caller knows what was not checked).
    """

    def __init__(self, rings: Sequence[Ring], *, stop_early: bool = True, unavailable: Sequence[str] = ()) -> None:
        self.rings = list(rings)
        self.stop_early = stop_early
        self.unavailable = list(unavailable)

    @property
    def names(self) -> list[str]:
        return [r.name for r in self.rings]

    def check(self, exchange: Exchange) -> GuardVerdict:
        """Run the rings on an exchange and combine their verdicts (most severe decision wins).

        Rings that judge the whole turn (``reads_turn = True``, e.g. the conversation ring)
        run last, always (a blocked turn still counts towards a burst of blocked attempts),
        and see the other rings' scores in ``exchange.meta["turn_scores"]`` and their
        combined decision in ``exchange.meta["turn_decision"]``.
        """
        t0 = time.perf_counter()
        verdicts: list[RingVerdict] = []
        stopped_at = None
        turn_rings = [r for r in self.rings if getattr(r, "reads_turn", False)]
        for ring in self.rings:
            if ring in turn_rings:
                continue
            if exchange.response is None and getattr(ring, "judges_response", False):
                continue  # it judges answers; the backend runs it token by token during generation
            verdict = ring.check(exchange)
            verdicts.append(verdict)
            if self.stop_early and verdict.decision == "block":
                stopped_at = ring.name
                break
        if turn_rings:
            first = combine(verdicts, stopped_at, self.unavailable, 0.0)
            exchange.meta["turn_scores"] = {**(exchange.meta.get("turn_scores") or {}), **first.ring_scores}
            exchange.meta["turn_decision"] = first.decision
            verdicts.extend(r.check(exchange) for r in turn_rings)
        return combine(verdicts, stopped_at, self.unavailable, (time.perf_counter() - t0) * 1000)


def combine(
    verdicts: Sequence[RingVerdict], stopped_at: str | None, unavailable: Sequence[str], latency_ms: float
) -> GuardVerdict:
    """The combined verdict of several ring verdicts."""
    if not verdicts:
        return GuardVerdict(decision="allow", score=0.0, rings=[], unavailable=list(unavailable), latency_ms=latency_ms)
    worst = max(verdicts, key=lambda v: (SEVERITY[v.decision], v.score))
    rewrite = next((v.rewrite for v in verdicts if v.decision == "rewrite" and v.rewrite), None)
    return GuardVerdict(
        decision=worst.decision,
        score=max(v.score for v in verdicts),
        category=worst.category if worst.decision != "allow" else None,
        rings=list(verdicts),
        stopped_at=stopped_at,
        unavailable=list(unavailable),
        latency_ms=latency_ms,
        rewrite=rewrite,
    )
