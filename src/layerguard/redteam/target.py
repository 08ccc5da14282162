"""The model under attack, unguarded or guarded, as attacker-driven attacks see it.

Unguarded, the model answers greedily (:func:`layerguard.models.generate.generate`). Guarded,
every request goes through :meth:`GuardedModel.respond_many` (the path the service and the
runner use): a request the input or turn rings decline, or an answer an answer ring stops,
comes back as the guard's safe completion, which is what the attacker then reads.

A caller may give each request a client's API key (``Exchange.api_key``; PAIR gives each goal
one): the conversation ring's burst detector counts blocked attempts per key. Turn-stage rings
(e.g. the conversation ring) are reported separately: their catch rate is a measured quantity.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from layerguard.guard.guarded import GuardedModel
from layerguard.guard.types import Exchange, GuardVerdict, Message
from layerguard.redteam.attacker import Conversation
from layerguard.redteam.runner import SAFE_COMPLETION


@dataclass
class TargetReply:
    """The target's answer to one request.

    Attributes:
        shown: What the client receives (the safe completion when the guard declined).
        answer: The model's own answer ('' when the guard declined before generation).
        decision: The guard's decision (None unguarded).
        rings: Ring name -> score (guarded).
        flagged: Rings that alone would have stopped the request (decision not allow).
        turn_rings: Turn-stage rings' decisions and details (cumulative risk, turns), by ring name.
    """

    shown: str
    answer: str
    decision: str | None = None
    rings: dict[str, float] = field(default_factory=dict)
    flagged: list[str] = field(default_factory=list)
    turn_rings: dict[str, dict[str, Any]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON form for result files."""
        return {
            "decision": self.decision,
            "rings": {k: round(v, 4) for k, v in self.rings.items()},
            "flagged": self.flagged,
            "turn_rings": self.turn_rings,
        }


def to_exchange(conv: Conversation, api_key: str | None = None) -> Exchange:
    """An exchange of chat messages (and the client's key)."""
    return Exchange(
        messages=[Message(role=m["role"], content=m["content"]) for m in conv],  # type: ignore[arg-type]
        api_key=api_key,
    )


def turn_ring_report(guarded: GuardedModel, verdict: GuardVerdict) -> dict[str, dict[str, Any]]:
    """The turn-stage rings' verdicts in a combined verdict, by ring name."""
    names = {r.name for r in guarded.guard.at("turn")}
    out: dict[str, dict[str, Any]] = {}
    for v in verdict.rings:
        if v.ring in names:
            keep: dict[str, Any] = {
                k: v.details[k] for k in ("cumulative_risk", "turns", "turn_score") if k in v.details
            }
            out[v.ring] = {"decision": v.decision, "score": round(v.score, 4), **keep}
    return out


def fresh_turn_state(guarded: GuardedModel | None) -> None:
    """Give stateful turn rings a fresh in-memory state, so runs in one process do not share it."""
    if guarded is None:
        return
    from layerguard.guard.rings.conversation import MemoryConversationState

    for ring in guarded.guard.at("turn"):
        use_store = getattr(ring, "use_store", None)
        if use_store is not None:
            use_store(MemoryConversationState())


class Target:
    """The model under attack.

    Args:
        lm: The target model.
        guarded: The guarded model (None: unguarded).
        max_new_tokens: Answer length.
        batch_size: Requests per batch.
    """

    def __init__(self, lm: Any, guarded: GuardedModel | None, *, max_new_tokens: int = 64, batch_size: int = 8) -> None:
        self.lm, self.guarded = lm, guarded
        self.max_new_tokens, self.batch_size = max_new_tokens, batch_size

    @property
    def is_guarded(self) -> bool:
        """Requests go through the guard."""
        return self.guarded is not None

    def answer_many(self, convs: Sequence[Conversation], keys: Sequence[str | None] | None = None) -> list[TargetReply]:
        """Answer each conversation (its last message is the request)."""
        if not convs:
            return []
        if self.guarded is None:
            from layerguard.models.generate import generate

            texts = generate(self.lm, convs, max_new_tokens=self.max_new_tokens, batch_size=self.batch_size)
            return [TargetReply(t, t) for t in texts]
        keys = keys if keys is not None else [None] * len(convs)
        exchanges = [to_exchange(c, k) for c, k in zip(convs, keys, strict=True)]
        answered = self.guarded.respond_many(exchanges, max_new_tokens=self.max_new_tokens, batch_size=self.batch_size)
        out = []
        for a in answered:
            allowed = a.decision == "allow"
            out.append(
                TargetReply(
                    shown=a.text if allowed else (a.verdict.rewrite or SAFE_COMPLETION),
                    answer=a.text,
                    decision=a.decision,
                    rings=a.verdict.ring_scores,
                    flagged=[v.ring for v in a.verdict.rings if v.decision != "allow"],
                    turn_rings=turn_ring_report(self.guarded, a.verdict),
                )
            )
        return out


def replay_turn_rings(
    guarded: GuardedModel, conversations: Sequence[Conversation], key_prefix: str = "replay"
) -> list[list[dict[str, Any]]]:
    """What the guard would have said at each user turn of finished conversations.

    Each conversation's prefixes up to each user message are checked in order (as the
    service would have seen them arrive), with a fresh ring state and one key per
    conversation. Returns, per conversation and user turn, the input decision, the rings
    that alone would have stopped it and the turn rings' report.
    """
    fresh_turn_state(guarded)
    out: list[list[dict[str, Any]]] = []
    for i, conv in enumerate(conversations):
        reports = []
        for j, m in enumerate(conv):
            if m["role"] != "user":
                continue
            verdict = guarded.check(to_exchange(list(conv[: j + 1]), f"{key_prefix}-{i}"))
            reports.append(
                {
                    "decision": verdict.decision,
                    "flagged": [v.ring for v in verdict.rings if v.decision != "allow"],
                    "turn_rings": turn_ring_report(guarded, verdict),
                }
            )
        out.append(reports)
    return out
