"""The store's records: the audit log and the escalation queue."""

from __future__ import annotations

import secrets
import time
from typing import Any, Literal

from sqlalchemy import insert, select, update

from layerguard.service.storage.base import StoreBase
from layerguard.service.storage.schema import audit, escalations


class AuditOps(StoreBase):
    """The audit log: one durable record per request."""

    def add_audit(self, **fields: Any) -> int:
        """Insert an audit record and commit it; returns its id once it is durable.

        Fields are the ``audit`` columns (``ts`` defaults to now). ``api_key_hash`` must be a
        hash (see :func:`hash_key`), never the raw key.
        """
        values = {c: fields[c] for c in audit.c.keys() if c in fields and c != "id"}
        unknown = set(fields) - set(audit.c.keys())
        if unknown:
            raise ValueError(f"unknown audit fields: {sorted(unknown)}")
        values.setdefault("ts", time.time())
        values.setdefault("endpoint", "")
        with self._tx() as conn:
            result = conn.execute(insert(audit).values(**values))
            pk = result.inserted_primary_key
            assert pk is not None
            return int(pk[0])

    def list_audit(self, *, limit: int = 100, after_id: int = 0, request_id: str | None = None) -> list[dict[str, Any]]:
        """Audit records in id order."""
        q = select(audit).where(audit.c.id > after_id).order_by(audit.c.id).limit(limit)
        if request_id is not None:
            q = q.where(audit.c.request_id == request_id)
        with self._tx() as conn:
            return [dict(r._mapping) for r in conn.execute(q)]

    def audit_ids(self) -> set[int]:
        """Every audit record id (for consistency checks)."""
        with self._tx() as conn:
            return {int(r[0]) for r in conn.execute(select(audit.c.id))}


class EscalationOps(StoreBase):
    """The escalation queue: open items, one per conversation, resolved once by a reviewer."""

    def create_escalation(
        self,
        *,
        request_id: str,
        api_key_hash: str | None,
        reason: str,
        payload: dict[str, Any],
        dedupe_key: str | None = None,
    ) -> str:
        """Record an open escalation; returns its id (``esc_...``).

        With a ``dedupe_key`` (e.g. a conversation thread), an escalation still open under the
        same key and API key is reused: its ``hits`` count grows and its id is returned, so a
        reviewer sees one item per conversation rather than one per turn.
        """
        eid = "esc_" + secrets.token_hex(12)
        with self._tx() as conn:
            if dedupe_key is not None:
                row = conn.execute(
                    select(escalations.c.id).where(
                        escalations.c.dedupe_key == dedupe_key,
                        escalations.c.api_key_hash == api_key_hash,
                        escalations.c.status == "open",
                    )
                ).first()
                if row is not None:
                    conn.execute(
                        update(escalations).where(escalations.c.id == row[0]).values(hits=escalations.c.hits + 1)
                    )
                    return str(row[0])
            conn.execute(
                insert(escalations).values(
                    id=eid,
                    ts=time.time(),
                    request_id=request_id,
                    api_key_hash=api_key_hash,
                    reason=reason,
                    payload=payload,
                    status="open",
                    dedupe_key=dedupe_key,
                    hits=1,
                )
            )
        return eid

    def get_escalation(self, eid: str) -> dict[str, Any] | None:
        """One escalation, or None."""
        with self._tx() as conn:
            row = conn.execute(select(escalations).where(escalations.c.id == eid)).first()
        return dict(row._mapping) if row is not None else None

    def list_escalations(self, status: str | None = None, *, limit: int = 100) -> list[dict[str, Any]]:
        """Escalations, newest first, optionally of one status."""
        q = select(escalations).order_by(escalations.c.ts.desc()).limit(limit)
        if status is not None:
            q = q.where(escalations.c.status == status)
        with self._tx() as conn:
            return [dict(r._mapping) for r in conn.execute(q)]

    def resolve_escalation(
        self, eid: str, status: Literal["approved", "rejected"], *, resolved_by: str, note: str = ""
    ) -> tuple[Literal["ok", "not_found", "already_resolved"], dict[str, Any] | None]:
        """Approve or reject an open escalation (only once).

        Returns:
            ``("ok", row)``, ``("not_found", None)`` or ``("already_resolved", row)``.
        """
        with self._tx() as conn:
            res = conn.execute(
                update(escalations)
                .where(escalations.c.id == eid, escalations.c.status == "open")
                .values(status=status, resolved_by=resolved_by, resolved_at=time.time(), note=note)
            )
            row = conn.execute(select(escalations).where(escalations.c.id == eid)).first()
        if row is None:
            return "not_found", None
        return ("ok" if res.rowcount == 1 else "already_resolved"), dict(row._mapping)
