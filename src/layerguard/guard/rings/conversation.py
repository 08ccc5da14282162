"""Conversation ring: risk that builds up over turns, and bursts of blocked attempts per key.

A Crescendo-style attack never asks for the harmful thing in one turn: each message is
mildly worrying on its own and no single ring crosses its threshold. This ring keeps,
per conversation, an exponentially weighted *cumulative* risk

    R_t = decay * R_{t-1} + max(0, s_t - floor)

where ``s_t`` is the highest score the other rings gave the current turn (the service
puts them in ``exchange.turn_scores``, ring name -> score) and ``floor`` is the
score an ordinary benign turn reaches. When ``R_t`` reaches ``escalate_at`` the turn is
escalated for human review. A benign conversation stays near ``(s - floor) / (1 - decay)``
with ``s`` below the floor, i.e. near zero; a conversation of steady moderate scores
(0.4 with the defaults: 0.30, 0.54, 0.73, 0.89, 1.01) crosses 1.0 at its fifth turn.

A conversation is always followed by its content, scoped to the API key: a chain of hashes
of the user messages (the state after a turn is stored under the hash of all user messages
so far, and the next turn, whose earlier user messages are exactly those, finds it).
Assistant messages are not hashed because the reply is not known when the turn is checked
(and regenerated replies differ). When the client also names the conversation
(``exchange.conversation_id``), that thread is followed too and the higher of the two risks
counts, so a client cannot reset its risk by sending a new conversation id with the same
thread.

Per API key, a burst detector counts turns that the other rings blocked *confidently*
(``exchange.turn_decision == "block"`` and at least ``burst_agree`` rings scored the turn at
``burst_min_score`` or more: a second opinion): ``burst_blocks`` of them within
``burst_window_s`` seconds block the key for ``cooldown_s`` seconds, whatever it sends. A
block that only one ring stands behind (a short benign prompt one ring mistakes for harm)
never counts towards a lock-out; old blocks fall out of the window.

State lives in a :class:`ConversationState`: in memory by default (one process), or the
service's SQL store (shared by replicas). Keys are stored as SHA-256 hashes only.
"""

from __future__ import annotations

import hashlib
import json
import math
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Sequence
from typing import Any, Protocol, runtime_checkable

from layerguard.guard.types import Decision, Exchange, RingVerdict, Stage


@runtime_checkable
class ConversationState(Protocol):
    """Where the ring keeps cumulative risks, blocked-attempt events and key cool-downs."""

    def advance_conversation(
        self, prev_key: str | None, key: str, turn_risk: float, decay: float, now: float, ttl_s: float
    ) -> tuple[float, int]:
        """Atomically read the state at ``prev_key``, add a turn and store it at ``key``.

        Args:
            prev_key: Where the previous turn's state is (None: a new conversation).
            key: Where to store the new state.
            turn_risk: This turn's risk (already above the floor).
            decay: Weight of the previous cumulative risk.
            now: Current time (seconds since the epoch).
            ttl_s: A state older than this counts as a new conversation.

        Returns:
            The new cumulative risk and the number of turns counted so far.
        """
        ...

    def record_event(self, key_hash: str, kind: str, now: float, amount: int = 1) -> None:
        """Record one event (e.g. ``blocked``) for a key."""
        ...

    def count_events(self, key_hash: str, kind: str, since: float) -> int:
        """Number of a key's events of one kind at or after ``since``."""
        ...

    def cooldown_until(self, key_hash: str) -> float:
        """Time until which a key is blocked (0 when it is not)."""
        ...

    def set_cooldown(self, key_hash: str, until: float, reason: str) -> None:
        """Block a key until ``until``."""
        ...


class MemoryConversationState:
    """In-process :class:`ConversationState` (thread-safe, bounded LRU of conversations).

    Args:
        max_conversations: Conversations kept; the least recently used are dropped.
        max_events_age_s: Events older than this are forgotten.
    """

    def __init__(self, max_conversations: int = 100_000, max_events_age_s: float = 86_400.0) -> None:
        self._lock = threading.Lock()
        self._conv: OrderedDict[str, tuple[float, int, float]] = OrderedDict()
        self._events: dict[tuple[str, str], deque[tuple[float, int]]] = {}
        self._cooldowns: dict[str, float] = {}
        self.max_conversations = max_conversations
        self.max_events_age_s = max_events_age_s

    def advance_conversation(
        self, prev_key: str | None, key: str, turn_risk: float, decay: float, now: float, ttl_s: float
    ) -> tuple[float, int]:
        with self._lock:
            prev = self._conv.get(prev_key) if prev_key is not None else None
            risk, turns = 0.0, 0
            if prev is not None and now - prev[2] <= ttl_s:
                risk, turns = prev[0], prev[1]
            risk, turns = decay * risk + turn_risk, turns + 1
            self._conv[key] = (risk, turns, now)
            self._conv.move_to_end(key)
            while len(self._conv) > self.max_conversations:
                self._conv.popitem(last=False)
            return risk, turns

    def record_event(self, key_hash: str, kind: str, now: float, amount: int = 1) -> None:
        with self._lock:
            q = self._events.setdefault((key_hash, kind), deque())
            q.append((now, amount))
            while q and q[0][0] < now - self.max_events_age_s:
                q.popleft()

    def count_events(self, key_hash: str, kind: str, since: float) -> int:
        with self._lock:
            return sum(1 for ts, _ in self._events.get((key_hash, kind), ()) if ts >= since)

    def cooldown_until(self, key_hash: str) -> float:
        with self._lock:
            return self._cooldowns.get(key_hash, 0.0)

    def set_cooldown(self, key_hash: str, until: float, reason: str) -> None:
        with self._lock:
            self._cooldowns[key_hash] = max(until, self._cooldowns.get(key_hash, 0.0))


def key_hash(api_key: str) -> str:
    """SHA-256 hex digest of an API key (the only form in which keys are stored)."""
    return hashlib.sha256(api_key.encode("utf-8")).hexdigest()


def _digest(*parts: str) -> str:
    return hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()


def conversation_keys(exchange: Exchange, scope: str) -> tuple[str | None, str]:
    """Where the previous turn's state is and where this turn's goes.

    Args:
        exchange: The current turn.
        scope: The key hash (or ``""``), so two keys never share a conversation.

    Returns:
        ``(prev_key, key)``; ``prev_key`` is None for the first turn of a hashed chain.
    """
    if exchange.conversation_id:
        k = "id:" + _digest(scope, exchange.conversation_id)
        return k, k
    users = [m.content for m in exchange.messages if m.role == "user"]
    # the current turn is the last user message; the earlier ones identify the conversation
    earlier = users[:-1] if users else []
    prev = "h:" + _digest(scope, json.dumps(earlier)) if earlier else None
    return prev, "h:" + _digest(scope, json.dumps(users))


def _thread_id(exchange: Exchange, scope: str) -> str:
    if exchange.conversation_id:
        return "id:" + _digest(scope, exchange.conversation_id)[:24]
    first = next((m.content for m in exchange.messages if m.role == "user"), "")
    return "h:" + _digest(scope, first)[:24]


class ConversationRing:
    """Escalate conversations whose accumulated risk crosses a threshold; block bursting keys.

    Args:
        state: Where state is kept (default: in memory, this process only).
        decay: Weight of the previous cumulative risk, in [0, 1).
        floor: Turn scores at or below this add no risk.
        escalate_at: Cumulative risk that escalates the turn.
        score_rings: Rings whose turn scores count (default: every ring in ``turn_scores``).
        burst_blocks: Confidently blocked turns within ``burst_window_s`` that block the key (0: off).
        burst_min_score: A ring's score that counts as an opinion that the turn is harmful.
        burst_agree: Rings that must hold that opinion for a block to count (1 for a guard
            with a single scoring ring). A guard that stops at the first blocking ring gives no
            second opinion; the service runs every input ring when this ring is on.
        burst_window_s: Window of the burst detector.
        cooldown_s: How long a bursting key stays blocked.
        ttl_s: A conversation idle for longer starts again from zero.
        clock: Time source (seconds since the epoch), for tests.
    """

    name = "conversation"
    stage: Stage = "turn"  # the pipeline runs it after the input rings, with their scores
    reads: tuple[str, ...] = ()

    def __init__(
        self,
        state: ConversationState | None = None,
        *,
        decay: float = 0.8,
        floor: float = 0.1,
        escalate_at: float = 1.0,
        score_rings: Sequence[str] | None = None,
        burst_blocks: int = 5,
        burst_min_score: float = 0.8,
        burst_agree: int = 2,
        burst_window_s: float = 60.0,
        cooldown_s: float = 300.0,
        ttl_s: float = 86_400.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"decay must be in [0, 1), got {decay}")
        if not 0.0 <= floor < 1.0:
            raise ValueError(f"floor must be in [0, 1), got {floor}")
        if escalate_at <= 0:
            raise ValueError(f"escalate_at must be positive, got {escalate_at}")
        self.state: ConversationState = state if state is not None else MemoryConversationState()
        self.decay = decay
        self.floor = floor
        self.escalate_at = escalate_at
        self.score_rings = set(score_rings) if score_rings is not None else None
        self.burst_blocks = burst_blocks
        self.burst_min_score = burst_min_score
        self.burst_agree = burst_agree
        self.burst_window_s = burst_window_s
        self.cooldown_s = cooldown_s
        self.ttl_s = ttl_s
        self.clock = clock

    def use_store(self, store: ConversationState) -> None:
        """Keep conversation state in ``store`` (e.g. the service's SQL store, shared by replicas)."""
        self.state = store

    def turn_score(self, exchange: Exchange) -> tuple[float, str | None]:
        """The highest usable score in ``meta["turn_scores"]`` and the ring that gave it."""
        raw = exchange.turn_scores
        best, best_ring = 0.0, None
        if not isinstance(raw, dict):
            return best, best_ring
        for ring, value in raw.items():
            if ring == self.name or (self.score_rings is not None and ring not in self.score_rings):
                continue
            try:
                s = float(value)
            except (TypeError, ValueError):
                continue
            if math.isnan(s):
                continue
            s = min(1.0, max(0.0, s))
            if s > best or best_ring is None:
                best, best_ring = s, str(ring)
        return best, best_ring

    def confident_block(self, exchange: Exchange) -> bool:
        """Whether the turn was blocked with a second opinion (see the module docstring)."""
        if exchange.turn_decision != "block":
            return False
        scores = []
        for name, value in exchange.turn_scores.items():
            if name == self.name or (self.score_rings is not None and name not in self.score_rings):
                continue
            try:
                scores.append(float(value))
            except (TypeError, ValueError):
                continue
        return sum(1 for v in scores if v >= self.burst_min_score) >= max(1, self.burst_agree)

    def check(self, exchange: Exchange) -> RingVerdict:
        """Add this turn to its conversation and judge the key's recent blocked attempts."""
        t0 = time.perf_counter()
        now = self.clock()
        kh = key_hash(exchange.api_key) if exchange.api_key else None

        def verdict(
            decision: Decision, score: float, explanation: str, category: str | None, details: dict[str, Any]
        ) -> RingVerdict:
            return RingVerdict(
                ring=self.name,
                score=min(1.0, max(0.0, score)),
                decision=decision,
                category=category,
                latency_ms=(time.perf_counter() - t0) * 1000,
                explanation=explanation,
                details=details,
            )

        if kh is not None and self.burst_blocks > 0:
            until = self.state.cooldown_until(kh)
            if until > now:
                return verdict(
                    "block",
                    1.0,
                    f"this API key is blocked for {until - now:.0f} s more after {self.burst_blocks} blocked "
                    f"attempts within {self.burst_window_s:.0f} s",
                    "abuse_burst",
                    {"cooldown_until": until},
                )

        s, ring = self.turn_score(exchange)
        turn_risk = max(0.0, s - self.floor)
        prev_key, key = conversation_keys(exchange, kh or "")
        risk, turns = self.state.advance_conversation(prev_key, key, turn_risk, self.decay, now, self.ttl_s)
        if exchange.conversation_id:  # the thread's content too: a new id does not reset the risk
            prev_c, key_c = conversation_keys(exchange.model_copy(update={"conversation_id": None}), kh or "")
            risk_c, turns_c = self.state.advance_conversation(prev_c, key_c, turn_risk, self.decay, now, self.ttl_s)
            risk, turns = max(risk, risk_c), max(turns, turns_c)
        details: dict[str, Any] = {
            "cumulative_risk": round(risk, 6),
            "turns": turns,
            "turn_score": s,
            "turn_score_ring": ring,
            "turn_risk": round(turn_risk, 6),
            "escalate_at": self.escalate_at,
            "conversation": key[:14],
            # stable over the turns of one conversation (a hashed chain's key changes every turn):
            # the service files one escalation per thread, not one per turn
            "thread": _thread_id(exchange, kh or ""),
        }

        if kh is not None and self.burst_blocks > 0 and self.confident_block(exchange):
            self.state.record_event(kh, "blocked", now)
            recent = self.state.count_events(kh, "blocked", now - self.burst_window_s)
            details["blocked_recent"] = recent
            if recent >= self.burst_blocks:
                self.state.set_cooldown(kh, now + self.cooldown_s, "burst of blocked attempts")
                return verdict(
                    "block",
                    1.0,
                    f"{recent} blocked attempts within {self.burst_window_s:.0f} s: this API key is blocked "
                    f"for {self.cooldown_s:.0f} s",
                    "abuse_burst",
                    details,
                )

        score = risk / self.escalate_at
        if risk >= self.escalate_at:
            return verdict(
                "escalate",
                score,
                f"cumulative risk {risk:.2f} over {turns} turns reached {self.escalate_at:g} "
                f"(this turn: {s:.2f} from {ring or 'no ring'})",
                "crescendo",
                details,
            )
        return verdict(
            "allow", score, f"cumulative risk {risk:.2f} over {turns} turns (< {self.escalate_at:g})", None, details
        )
