"""The service's SQL store: audit log, escalations, rate-limit events, conversation state.

Any SQLAlchemy URL works; one engine per :class:`Store`, safe to share between threads.

SQLite (the default, ``sqlite:///path/to/service.db`` or a plain path):

* WAL journal, ``busy_timeout`` 10 s, and every transaction opened with ``BEGIN IMMEDIATE``
  (so read-modify-write sequences never fail half-way on a lock upgrade); inside one
  process, transactions are also serialized by a lock, so threads queue instead of
  spinning on SQLite's busy handler.
* Durability: ``synchronous=FULL`` by default. A commit returns only after the WAL has been
  fsync'ed, so a committed audit record survives a process kill *and* a power loss or OS
  crash. With ``synchronous="NORMAL"`` (faster), WAL commits are still durable against a
  process crash or SIGKILL (the committed frames are in the WAL file, in the OS page cache,
  and are replayed on the next open), but the last transactions before a power loss or OS
  crash can be lost. The synchronous level is per connection, not per table, so it applies
  to every table.
* Several processes (replicas) may share one SQLite *file* on one machine; not over NFS.

PostgreSQL (several replicas on several machines): install a driver
(``pip install "psycopg[binary]"``) and pass ``postgresql+psycopg://user:pass@host/db``
(``--db`` or ``db_url``). Tables are created on first start. The DB-backed rate limiter
serializes each key's check-and-record with ``SELECT ... FOR UPDATE`` on a per-key row, so
per-key limits hold across replicas. Durability is the server's (``synchronous_commit=on``
by default).
"""

from __future__ import annotations

import hashlib
import math
import re
import secrets
import threading
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from sqlalchemy import (
    JSON,
    Column,
    Connection,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    create_engine,
    delete,
    event,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, IntegrityError
from sqlalchemy.pool import StaticPool

from layerguard.errors import InvalidInputError

SCHEMA_VERSION = 2  # 2: escalations.dedupe_key and hits (one open escalation per conversation)
EscalationStatus = Literal["open", "approved", "rejected"]
ESCALATION_STATUSES: tuple[str, ...] = ("open", "approved", "rejected")

metadata = MetaData()

layerguard_meta = Table(
    "layerguard_meta",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", String(256), nullable=False),
)

audit = Table(
    "audit",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("ts", Float, nullable=False, index=True),
    Column("request_id", String(64), nullable=False, index=True),
    Column("endpoint", String(64), nullable=False, default=""),
    Column("api_key_hash", String(64), nullable=True, index=True),
    Column("key_name", String(128), nullable=True),
    Column("model", String(256), nullable=True),
    Column("decision", String(32), nullable=False),
    Column("score", Float, nullable=True),
    Column("category", String(128), nullable=True),
    Column("rings", JSON, nullable=True),
    Column("latency_ms", Float, nullable=True),
    Column("prompt_sha256", String(64), nullable=True),
    Column("prompt_preview", Text, nullable=True),
    Column("finish_reason", String(32), nullable=True),
    Column("halted_by", String(64), nullable=True),
    Column("status", Integer, nullable=True),
    Column("prompt_tokens", Integer, nullable=True),
    Column("completion_tokens", Integer, nullable=True),
    Column("detail", JSON, nullable=True),
)

escalations = Table(
    "escalations",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("ts", Float, nullable=False),
    Column("request_id", String(64), nullable=False),
    Column("api_key_hash", String(64), nullable=True),
    Column("reason", Text, nullable=False, default=""),
    Column("payload", JSON, nullable=True),
    Column("status", String(16), nullable=False, default="open", index=True),
    Column("resolved_by", String(128), nullable=True),
    Column("resolved_at", Float, nullable=True),
    Column("note", Text, nullable=True),
    # one open escalation per conversation thread: later turns add hits instead of new rows
    Column("dedupe_key", String(64), nullable=True, index=True),
    Column("hits", Integer, nullable=False, default=1),
)

rate_events = Table(
    "rate_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("api_key_hash", String(64), nullable=False),
    Column("ts", Float, nullable=False),
    Column("kind", String(16), nullable=False),
    Column("amount", Integer, nullable=False, default=1),
    Index("ix_rate_events_key_kind_ts", "api_key_hash", "kind", "ts"),
)

# one row per key: the row locked (SELECT ... FOR UPDATE) to serialize a key's rate checks
rate_keys = Table("rate_keys", metadata, Column("api_key_hash", String(64), primary_key=True))

conversation_state = Table(
    "conversation_state",
    metadata,
    Column("key", String(80), primary_key=True),
    Column("risk", Float, nullable=False),
    Column("turns", Integer, nullable=False),
    Column("updated", Float, nullable=False, index=True),
)

key_cooldowns = Table(
    "key_cooldowns",
    metadata,
    Column("api_key_hash", String(64), primary_key=True),
    Column("until", Float, nullable=False),
    Column("reason", Text, nullable=True),
)


def hash_key(api_key: str) -> str:
    """SHA-256 hex digest of an API key; raw keys are never stored."""
    return hashlib.sha256(api_key.encode("utf-8")).hexdigest()


def normalize_url(url: str | Path) -> str:
    """A SQLAlchemy URL: URLs pass through; a plain path becomes ``sqlite:///<absolute path>``."""
    text = str(url)
    if "://" in text:
        return text
    return f"sqlite:///{Path(text).expanduser().resolve()}"


def _migrate(conn: Connection, version: int) -> None:
    """Bring a database written by an earlier layerguard up to :data:`SCHEMA_VERSION`, in place."""
    if version < 2:
        conn.exec_driver_sql("ALTER TABLE escalations ADD COLUMN dedupe_key VARCHAR(64)")
        conn.exec_driver_sql("ALTER TABLE escalations ADD COLUMN hits INTEGER NOT NULL DEFAULT 1")
        conn.exec_driver_sql("CREATE INDEX IF NOT EXISTS ix_escalations_dedupe_key ON escalations (dedupe_key)")
    conn.execute(
        update(layerguard_meta).where(layerguard_meta.c.key == "schema_version").values(value=str(SCHEMA_VERSION))
    )


class Store:
    """Thread-safe SQL store of the service.

    Args:
        url: SQLAlchemy URL or a path (SQLite file). ``sqlite://`` is an in-memory database
            (one process; for tests).
        sqlite_synchronous: SQLite ``PRAGMA synchronous`` (``FULL``, ``NORMAL`` or ``EXTRA``); see the
            module docstring for what each guarantees.
        busy_timeout_ms: How long a SQLite writer waits for another process's lock.
        echo: Log SQL.

    Raises:
        InvalidInputError: a malformed URL, a missing driver, or a database that cannot be opened.
    """

    def __init__(
        self,
        url: str | Path,
        *,
        sqlite_synchronous: Literal["FULL", "NORMAL", "EXTRA"] = "FULL",
        busy_timeout_ms: int = 10_000,
        echo: bool = False,
    ) -> None:
        self.url = normalize_url(url)
        try:
            parsed = make_url(self.url)
        except (ArgumentError, ValueError) as exc:
            shown = re.sub(r"//([^:/@]*):[^@/]*@", r"//\1:***@", self.url)
            raise InvalidInputError(f"invalid database URL {shown!r}: {exc}") from None
        self.is_sqlite = parsed.get_backend_name() == "sqlite"
        self._lock: threading.RLock | None = threading.RLock() if self.is_sqlite else None
        kwargs: dict[str, Any] = {"echo": echo, "future": True}
        in_memory = self.is_sqlite and parsed.database in (None, "", ":memory:")
        if self.is_sqlite:
            kwargs["connect_args"] = {"check_same_thread": False, "timeout": busy_timeout_ms / 1000}
            if in_memory:
                kwargs["poolclass"] = StaticPool  # one shared connection; the lock serializes its use
            elif parsed.database:
                Path(parsed.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        else:
            kwargs["pool_pre_ping"] = True
        try:
            self.engine = create_engine(self.url, **kwargs)
        except (ArgumentError, ImportError) as exc:
            raise InvalidInputError(
                f"cannot use database URL {parsed.render_as_string(hide_password=True)}: {exc}",
                hint="PostgreSQL needs a driver: pip install 'psycopg[binary]' and postgresql+psycopg://...",
            ) from None
        if self.is_sqlite:
            sync = sqlite_synchronous.upper()
            if sync not in ("FULL", "NORMAL", "EXTRA"):
                raise InvalidInputError(f"sqlite_synchronous must be FULL, NORMAL or EXTRA, got {sqlite_synchronous!r}")

            @event.listens_for(self.engine, "connect")
            def _on_connect(dbapi_conn: Any, record: Any) -> None:
                dbapi_conn.isolation_level = None  # SQLAlchemy emits BEGIN itself (below)
                cur = dbapi_conn.cursor()
                if not in_memory:
                    cur.execute("PRAGMA journal_mode=WAL")
                cur.execute(f"PRAGMA synchronous={sync}")
                cur.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
                cur.close()

            @event.listens_for(self.engine, "begin")
            def _on_begin(conn: Connection) -> None:
                conn.exec_driver_sql("BEGIN IMMEDIATE")

        self._create_schema()

    # ----------------------------------------------------------------------------- plumbing

    @contextmanager
    def _tx(self) -> Iterator[Connection]:
        """A transaction, committed on exit (serialized in-process for SQLite)."""
        if self._lock is None:
            with self.engine.begin() as conn:
                yield conn
            return
        with self._lock, self.engine.begin() as conn:
            yield conn

    def _create_schema(self) -> None:
        for attempt in range(3):
            try:
                with self._tx() as conn:
                    metadata.create_all(conn, checkfirst=True)
                    row = conn.execute(
                        select(layerguard_meta.c.value).where(layerguard_meta.c.key == "schema_version")
                    ).first()
                    if row is None:
                        conn.execute(insert(layerguard_meta).values(key="schema_version", value=str(SCHEMA_VERSION)))
                    elif int(row[0]) < SCHEMA_VERSION:
                        _migrate(conn, int(row[0]))
                    elif int(row[0]) > SCHEMA_VERSION:
                        raise InvalidInputError(
                            f"database schema version {row[0]} is newer than this layerguard's ({SCHEMA_VERSION})",
                            hint="upgrade layerguard or use another database",
                        )
                return
            except (IntegrityError, DBAPIError) as exc:
                # another replica created the schema at the same moment: try again
                if attempt == 2:
                    raise InvalidInputError(f"cannot open the database {self.safe_url}: {exc.orig}") from None
                time.sleep(0.2 * (attempt + 1))

    @property
    def safe_url(self) -> str:
        """The URL with any password hidden."""
        return make_url(self.url).render_as_string(hide_password=True)

    def ping(self) -> bool:
        """True when the database answers."""
        try:
            with self._tx() as conn:
                conn.exec_driver_sql("SELECT 1")
            return True
        except Exception:
            return False

    def close(self) -> None:
        """Release the engine's connections."""
        self.engine.dispose()

    # ------------------------------------------------------------------------------- audit

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

    # ------------------------------------------------------------------------- escalations

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

    # ------------------------------------------------------------- conversation ring state

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

    # ------------------------------------------------------------------ DB rate limiting

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
                retry = _token_retry([(float(t), int(a)) for t, a in toks], tpm, now, window_s)
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


@dataclass
class RateDecision:
    """Outcome of a rate-limit check."""

    allowed: bool
    kind: str = ""  # "requests" or "tokens" when refused
    retry_after: float = 0.0
    limit: int = 0


def _token_retry(events: list[tuple[float, int]], tpm: int, now: float, window_s: float) -> float | None:
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
                retry = _token_retry(list(toks), tpm, now, self.window_s)
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
