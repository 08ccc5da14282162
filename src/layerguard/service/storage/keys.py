"""Per-key and per-conversation state: conversation risk, key events, cooldowns, DB rate limiting."""

from __future__ import annotations

import secrets

from sqlalchemy import Connection, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from layerguard.service.storage.base import StoreBase
from layerguard.service.storage.ratelimit import RateDecision, token_retry
from layerguard.service.storage.schema import conversation_state, key_cooldowns, rate_events, rate_keys


class KeyStateOps(StoreBase):
    """State kept per API key or conversation, shared by every replica using the database."""

    def advance_conversation(
        self, prev_key: str | None, key: str, turn_risk: float, decay: float, now: float, ttl_s: float
    ) -> tuple[float, int]:
        """See :class:`layerguard.guard.rings.conversation.ConversationState`."""
        cs = conversation_state
        with self._tx() as conn:
            risk, turns = 0.0, 0
            if prev_key is not None:
                q = select(cs.c.risk, cs.c.turns, cs.c.updated).where(cs.c.key == prev_key)
                if not self.is_sqlite:
                    q = q.with_for_update()
                row = conn.execute(q).first()
                if row is not None and now - float(row[2]) <= ttl_s:
                    risk, turns = float(row[0]), int(row[1])
            risk, turns = decay * risk + turn_risk, turns + 1
            res = conn.execute(update(cs).where(cs.c.key == key).values(risk=risk, turns=turns, updated=now))
            if res.rowcount == 0:
                conn.execute(insert(cs).values(key=key, risk=risk, turns=turns, updated=now))
            # forget long-idle conversations now and then
            if secrets.randbelow(256) == 0:
                conn.execute(delete(cs).where(cs.c.updated < now - ttl_s))
        return risk, turns

    def record_event(self, key_hash: str, kind: str, now: float, amount: int = 1) -> None:
        """Record a key's event (``blocked`` attempts, ``request``/``tokens`` for rate limits)."""
        with self._tx() as conn:
            conn.execute(insert(rate_events).values(api_key_hash=key_hash, ts=now, kind=kind, amount=amount))

    def count_events(self, key_hash: str, kind: str, since: float) -> int:
        """Number of a key's events of one kind since a time."""
        re_ = rate_events
        with self._tx() as conn:
            n = conn.execute(
                select(func.count())
                .select_from(re_)
                .where(re_.c.api_key_hash == key_hash, re_.c.kind == kind, re_.c.ts >= since)
            ).scalar_one()
        return int(n)

    def cooldown_until(self, key_hash: str) -> float:
        """Time until which a key is blocked (0 when it is not)."""
        with self._tx() as conn:
            row = conn.execute(select(key_cooldowns.c.until).where(key_cooldowns.c.api_key_hash == key_hash)).first()
        return float(row[0]) if row is not None else 0.0

    def set_cooldown(self, key_hash: str, until: float, reason: str) -> None:
        """Block a key until a time (an existing later block is kept)."""
        kc = key_cooldowns
        with self._tx() as conn:
            row = conn.execute(select(kc.c.until).where(kc.c.api_key_hash == key_hash)).first()
            if row is None:
                conn.execute(insert(kc).values(api_key_hash=key_hash, until=until, reason=reason))
            elif float(row[0]) < until:
                conn.execute(update(kc).where(kc.c.api_key_hash == key_hash).values(until=until, reason=reason))

    def rate_acquire(
        self, key_hash: str, rpm: int | None, tpm: int | None, now: float, window_s: float = 60.0
    ) -> RateDecision:
        """Check a key's request and token budgets over the last ``window_s`` and record a request.

        The check and the record happen in one transaction holding the key's lock row, so
        concurrent requests (threads or replicas) never overshoot ``rpm``.
        """
        re_ = rate_events
        since = now - window_s
        with self._tx() as conn:
            self._lock_key(conn, key_hash)
            conn.execute(
                delete(re_).where(
                    re_.c.api_key_hash == key_hash, re_.c.kind.in_(("request", "tokens")), re_.c.ts < since
                )
            )
            if rpm is not None:
                rows = conn.execute(
                    select(re_.c.ts)
                    .where(re_.c.api_key_hash == key_hash, re_.c.kind == "request", re_.c.ts >= since)
                    .order_by(re_.c.ts)
                ).all()
                if len(rows) >= rpm:
                    oldest = float(rows[len(rows) - rpm][0])
                    return RateDecision(False, "requests", max(0.0, oldest + window_s - now), rpm)
            if tpm is not None:
                toks = conn.execute(
                    select(re_.c.ts, re_.c.amount)
                    .where(re_.c.api_key_hash == key_hash, re_.c.kind == "tokens", re_.c.ts >= since)
                    .order_by(re_.c.ts)
                ).all()
                retry = token_retry([(float(t), int(a)) for t, a in toks], tpm, now, window_s)
                if retry is not None:
                    return RateDecision(False, "tokens", retry, tpm)
            conn.execute(insert(re_).values(api_key_hash=key_hash, ts=now, kind="request", amount=1))
        return RateDecision(True)

    def rate_add_tokens(self, key_hash: str, tokens: int, now: float) -> None:
        """Charge tokens used by a finished request to a key."""
        if tokens > 0:
            self.record_event(key_hash, "tokens", now, tokens)

    def _lock_key(self, conn: Connection, key_hash: str) -> None:
        if self.is_sqlite:
            return  # BEGIN IMMEDIATE already holds the database's write lock
        q = select(rate_keys.c.api_key_hash).where(rate_keys.c.api_key_hash == key_hash).with_for_update()
        if conn.execute(q).first() is None:
            try:
                with conn.begin_nested():
                    conn.execute(insert(rate_keys).values(api_key_hash=key_hash))
            except IntegrityError:
                pass  # another replica inserted it first
            conn.execute(q).first()
