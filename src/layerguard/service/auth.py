"""Admission: API-key authentication, the per-request context and per-key rate limits.

Keys are compared by SHA-256 hash only; a key with ``rpm`` or ``tpm`` set is refused with 429
(and ``Retry-After``) once its per-minute budget is spent. (Waiting for the model is the
scheduler's: :mod:`layerguard.service.scheduler`.)
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterable
from dataclasses import dataclass

from fastapi import Request

from layerguard.service.config import ResolvedKey
from layerguard.service.metrics import Metrics
from layerguard.service.schemas import ApiError
from layerguard.service.storage import RateLimiter, retry_after_header


@dataclass
class RequestCtx:
    """Per-request facts threaded through the handlers."""

    request_id: str
    endpoint: str
    t0: float
    key: ResolvedKey
    api_key: str
    escalation_header: str | None = None
    conversation_header: str | None = None
    audited: bool = False
    prompt_sha256: str | None = None
    preview: str | None = None
    model: str | None = None


class Authenticator:
    """API keys and their rate limits.

    Args:
        keys: The resolved keys of the configuration.
        limiter: The per-key request and token limiter.
        metrics: Where refusals by a rate limit are counted.
    """

    def __init__(self, keys: Iterable[ResolvedKey], limiter: RateLimiter, metrics: Metrics) -> None:
        self.keys = {k.key_hash: k for k in keys}
        self.limiter = limiter
        self.metrics = metrics

    def authenticate(self, request: Request, admin: bool = False) -> tuple[ResolvedKey, str]:
        """The key of a request and its token.

        Raises:
            ApiError: 401 when the key is missing or unknown, 403 when ``admin`` is needed and
                the key is not an admin key.
        """
        header = request.headers.get("authorization")
        if not header:
            raise ApiError(
                401,
                "Missing API key: send 'Authorization: Bearer <key>'",
                type="authentication_error",
                code="missing_api_key",
            )
        scheme, _, token = header.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise ApiError(
                401,
                "Malformed Authorization header: expected 'Bearer <key>'",
                type="authentication_error",
                code="invalid_api_key",
            )
        key = self.keys.get(hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest())
        if key is None:
            raise ApiError(401, "Incorrect API key provided", type="authentication_error", code="invalid_api_key")
        if admin and not key.admin:
            raise ApiError(
                403,
                f"API key {key.name!r} is not an admin key: escalations need an admin key",
                type="permission_error",
                code="permission_denied",
            )
        return key, token

    def context(self, request: Request, endpoint: str) -> RequestCtx:
        """Authenticate ``request`` and start its context (the clock starts here)."""
        key, token = self.authenticate(request)
        return RequestCtx(
            request_id=request.state.request_id,
            endpoint=endpoint,
            t0=time.perf_counter(),
            key=key,
            api_key=token,
            escalation_header=request.headers.get("x-layerguard-escalation"),
            conversation_header=request.headers.get("x-conversation-id"),
        )

    def rate_limit(self, ctx: RequestCtx) -> None:
        """Refuse with 429 (and Retry-After) when the key's budget is spent."""
        if ctx.key.rpm is None and ctx.key.tpm is None:
            return
        d = self.limiter.acquire(ctx.key.key_hash, ctx.key.rpm, ctx.key.tpm, time.time())
        if not d.allowed:
            self.metrics.rate_limited.labels(d.kind).inc()
            raise ApiError(
                429,
                f"Rate limit reached for API key {ctx.key.name!r}: {d.limit} {d.kind} per minute; "
                f"retry in {retry_after_header(d.retry_after)} s",
                type="rate_limit_error",
                code="rate_limit_exceeded",
                headers={"Retry-After": retry_after_header(d.retry_after)},
            )

    def charge(self, ctx: RequestCtx, tokens: int) -> None:
        """Count ``tokens`` against the key's per-minute token budget."""
        self.limiter.add_tokens(ctx.key.key_hash, tokens, time.time())
