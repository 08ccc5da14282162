"""The service's records: audit rows, escalations and the text of declined requests.

Every authenticated request to the two POST endpoints gets one audit row, written and committed
before its response ends; prompts are kept as a SHA-256 hash and a (redactable) preview.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import time
from typing import Any

from layerguard.guard.types import GuardVerdict, Message
from layerguard.service.auth import RequestCtx
from layerguard.service.config import ServiceConfig
from layerguard.service.metrics import Metrics
from layerguard.service.schemas import ApiError, dumps
from layerguard.service.storage import Store

log = logging.getLogger("layerguard.service")


def prompt_hash(messages: list[Message]) -> str:
    """SHA-256 of the conversation (roles and contents)."""
    canon = json.dumps([[m.role, m.content] for m in messages], ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canon.encode("utf-8")).hexdigest()


def verdict_summary(verdict: GuardVerdict) -> dict[str, Any]:
    """The verdict as returned to clients (without ring internals)."""
    return {
        "decision": verdict.decision,
        "score": round(verdict.score, 6),
        "category": verdict.category,
        "stopped_at": verdict.stopped_at,
        "unavailable": verdict.unavailable,
        "latency_ms": round(verdict.latency_ms, 3),
        "rings": [
            {"ring": v.ring, "decision": v.decision, "score": round(v.score, 6), "category": v.category,
             "explanation": v.explanation, "latency_ms": round(v.latency_ms, 3)}
            for v in verdict.rings
        ],
    }  # fmt: skip


REVIEW_NOTICE = "I'm sorry, but I can't help with that request right now: it has been sent for human review."
"""The assistant text of an escalated request (the escalation id is in the ``layerguard`` extension)."""


def declined_reason(verdict: GuardVerdict) -> str:
    """What declined a request: its category, else the ring that stopped it."""
    return (
        verdict.category
        or verdict.stopped_at
        or next((v.ring for v in verdict.rings if v.decision == verdict.decision), "policy")
    )


def declined_text(verdict: GuardVerdict, escalation_id: str | None, refusal: str) -> str:
    """The assistant message of a declined request: a rewrite, a review notice or the refusal.

    The text is a plain, conventional refusal that refusal detectors recognise; the category,
    the escalation id and the request id go in structured fields (the ``layerguard`` extension
    and the audit row), never in the text.
    """
    if verdict.decision == "rewrite" and verdict.rewrite:
        return verdict.rewrite
    if escalation_id is not None:
        return REVIEW_NOTICE
    return refusal


class Auditor:
    """Audit rows and escalations of one service.

    Args:
        store: The SQL store.
        metrics: Where requests, latencies and escalations are counted.
        config: Redaction and preview settings.
    """

    def __init__(self, store: Store, metrics: Metrics, config: ServiceConfig) -> None:
        self.store = store
        self.metrics = metrics
        self.config = config
        self._redact = [re.compile(p) for p in config.redact_patterns]

    def preview(self, text: str) -> str:
        """The audit preview of a prompt (redacted as configured)."""
        if self.config.redact_prompts:
            return "[redacted]"
        for pattern in self._redact:
            text = pattern.sub("[REDACTED]", text)
        return text[: self.config.preview_chars].replace("\x00", "\ufffd")

    def audit(
        self,
        ctx: RequestCtx,
        decision: str,
        status: int,
        *,
        verdict: GuardVerdict | None = None,
        finish_reason: str | None = None,
        halted_by: str | None = None,
        usage: dict[str, int] | None = None,
        detail: dict[str, Any] | None = None,
    ) -> int:
        """Write (and commit) the request's audit record; count it in the metrics."""
        ctx.audited = True
        latency = (time.perf_counter() - ctx.t0) * 1000
        rings = (
            [
                {"ring": v.ring, "score": round(v.score, 6), "decision": v.decision, "category": v.category,
                 "latency_ms": round(v.latency_ms, 3)}
                for v in verdict.rings
            ]
            if verdict is not None
            else None
        )  # fmt: skip
        rid = self.store.add_audit(
            ts=time.time(),
            request_id=ctx.request_id,
            endpoint=ctx.endpoint,
            api_key_hash=ctx.key.key_hash,
            key_name=ctx.key.name,
            model=ctx.model,
            decision=decision,
            score=verdict.score if verdict is not None else None,
            category=verdict.category if verdict is not None else None,
            rings=rings,
            latency_ms=latency,
            prompt_sha256=ctx.prompt_sha256,
            prompt_preview=ctx.preview,
            finish_reason=finish_reason,
            halted_by=halted_by,
            status=status,
            prompt_tokens=(usage or {}).get("prompt_tokens"),
            completion_tokens=(usage or {}).get("completion_tokens"),
            detail=json.loads(dumps(detail)) if detail else None,
        )
        self.metrics.requests.labels(ctx.endpoint, decision).inc()
        self.metrics.latency.labels(ctx.endpoint).observe(latency / 1000)
        return rid

    def audit_failure(self, ctx: RequestCtx, exc: ApiError) -> None:
        """Audit a request refused with a 4xx/5xx (never raises)."""
        if ctx.audited:
            return
        decision = {429: "rate_limited", 503: "overloaded"}.get(exc.status, "invalid" if exc.status < 500 else "error")
        try:
            self.audit(ctx, decision, exc.status, detail={"error": exc.code, "message": exc.message[:500]})
        except Exception:
            log.exception("audit write failed for %s", ctx.request_id)

    def escalate(
        self, ctx: RequestCtx, kind: str, reason: str, payload: dict[str, Any], dedupe_key: str | None = None
    ) -> str:
        """Create an open escalation (or add a hit to the open one with the same ``dedupe_key``)."""
        eid = self.store.create_escalation(
            request_id=ctx.request_id,
            api_key_hash=ctx.key.key_hash,
            reason=reason,
            payload=json.loads(dumps({"kind": kind, "key_name": ctx.key.name, "model": ctx.model, **payload})),
            dedupe_key=dedupe_key,
        )
        self.metrics.escalations.labels(kind).inc()
        return eid

    def escalate_input(self, ctx: RequestCtx, verdict: GuardVerdict, messages: list[Message]) -> str:
        """Escalate an input the guard sent to review; returns the escalation id.

        A conversation that keeps escalating is one item for the reviewer, not one per turn: the
        ``conversation`` ring's thread is the escalation's dedupe key.
        """
        reason = "; ".join(f"{v.ring}: {v.explanation}" for v in verdict.rings if v.decision == "escalate")
        payload: dict[str, Any] = {"prompt_sha256": ctx.prompt_sha256, "preview": ctx.preview,
                                   "verdict": verdict_summary(verdict)}  # fmt: skip
        if not self.config.redact_prompts:
            payload["messages"] = [{"role": m.role, "content": m.content} for m in messages]
        conv = [v for v in verdict.rings if v.decision == "escalate" and v.ring == "conversation"]
        thread = conv[0].details.get("thread") if conv else None
        return self.escalate(ctx, "input", reason or "escalated", payload, dedupe_key=thread)

    def approved_override(self, ctx: RequestCtx) -> str | None:
        """The id of an approved input escalation for exactly these messages from this key, if sent."""
        eid = ctx.escalation_header
        if not eid:
            return None
        row = self.store.get_escalation(eid.strip())
        if row is None or row["status"] != "approved" or row["api_key_hash"] != ctx.key.key_hash:
            return None
        payload = row.get("payload") or {}
        if payload.get("kind") != "input" or payload.get("prompt_sha256") != ctx.prompt_sha256:
            return None
        return str(row["id"])
