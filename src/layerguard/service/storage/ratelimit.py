"""Per-key rate limiting: in this process (memory) or across replicas (the store's table)."""

from __future__ import annotations

import math
import threading
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from layerguard.service.storage.store import Store


@dataclass
class RateDecision:
    """Outcome of a rate-limit check."""

    allowed: bool
    kind: str = ""  # "requests" or "tokens" when refused
    retry_after: float = 0.0
    limit: int = 0


def token_retry(events: list[tuple[float, int]], tpm: int, now: float, window_s: float) -> float | None:
    """Seconds until the tokens in the window fall below ``tpm`` (None when they already are)."""
    total = sum(a for _, a in events)
    if total < tpm:
        return None
    for ts, amount in events:  # oldest first: wait until enough of them leave the window
        total -= amount
        if total < tpm:
            return max(0.0, ts + window_s - now)
    return window_s


class MemoryRateLimiter:
    """Per-key sliding-window limits (requests and tokens per minute) in this process.

    Correct across threads (one lock); each replica counts only its own traffic.
    """

    def __init__(self, window_s: float = 60.0) -> None:
        self.window_s = window_s
        self._lock = threading.Lock()
        self._requests: dict[str, deque[float]] = {}
        self._tokens: dict[str, deque[tuple[float, int]]] = {}

    def acquire(self, key_hash: str, rpm: int | None, tpm: int | None, now: float) -> RateDecision:
        """Check both budgets and, when allowed, record the request."""
        since = now - self.window_s
        with self._lock:
            reqs = self._requests.setdefault(key_hash, deque())
            while reqs and reqs[0] < since:
                reqs.popleft()
            toks = self._tokens.setdefault(key_hash, deque())
            while toks and toks[0][0] < since:
                toks.popleft()
            if rpm is not None and len(reqs) >= rpm:
                oldest = reqs[len(reqs) - rpm]
                return RateDecision(False, "requests", max(0.0, oldest + self.window_s - now), rpm)
            if tpm is not None:
                retry = token_retry(list(toks), tpm, now, self.window_s)
                if retry is not None:
                    return RateDecision(False, "tokens", retry, tpm)
            reqs.append(now)
        return RateDecision(True)

    def add_tokens(self, key_hash: str, tokens: int, now: float) -> None:
        """Charge tokens used by a finished request."""
        if tokens > 0:
            with self._lock:
                self._tokens.setdefault(key_hash, deque()).append((now, tokens))


class DbRateLimiter:
    """Per-key limits counted in the store's ``rate_events`` table (correct across replicas)."""

    def __init__(self, store: Store, window_s: float = 60.0) -> None:
        self.store = store
        self.window_s = window_s

    def acquire(self, key_hash: str, rpm: int | None, tpm: int | None, now: float) -> RateDecision:
        """Check both budgets and, when allowed, record the request (one transaction)."""
        return self.store.rate_acquire(key_hash, rpm, tpm, now, self.window_s)

    def add_tokens(self, key_hash: str, tokens: int, now: float) -> None:
        """Charge tokens used by a finished request."""
        self.store.rate_add_tokens(key_hash, tokens, now)


RateLimiter = MemoryRateLimiter | DbRateLimiter


def make_rate_limiter(store: Store, mode: Literal["auto", "memory", "db"] = "auto") -> RateLimiter:
    """The rate limiter for a store.

    ``auto`` counts in memory for SQLite (one replica, or replicas that accept per-replica
    limits) and in the database for any other URL (several replicas share the limits).
    """
    if mode == "db" or (mode == "auto" and not store.is_sqlite):
        return DbRateLimiter(store)
    return MemoryRateLimiter()


def retry_after_header(seconds: float) -> str:
    """Retry-After value: whole seconds, at least 1."""
    return str(max(1, math.ceil(seconds)))
