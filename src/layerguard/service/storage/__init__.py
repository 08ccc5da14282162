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

The package is split by concern: :mod:`.schema` (tables, schema version, migrations),
:mod:`.base` (engine, transactions, schema creation), :mod:`.records` (audit log and
escalations), :mod:`.keys` (conversation state, per-key events, cooldowns and DB rate
limiting), :mod:`.ratelimit` (the rate limiters) and :mod:`.store` (:class:`Store`, all of it).
"""

from layerguard.service.storage.ratelimit import (
    DbRateLimiter,
    MemoryRateLimiter,
    RateDecision,
    RateLimiter,
    make_rate_limiter,
    retry_after_header,
)
from layerguard.service.storage.schema import (
    ESCALATION_STATUSES,
    SCHEMA_VERSION,
    EscalationStatus,
    audit,
    conversation_state,
    escalations,
    hash_key,
    key_cooldowns,
    layerguard_meta,
    metadata,
    normalize_url,
    rate_events,
    rate_keys,
)
from layerguard.service.storage.store import Store

__all__ = [
    "ESCALATION_STATUSES",
    "SCHEMA_VERSION",
    "DbRateLimiter",
    "EscalationStatus",
    "MemoryRateLimiter",
    "RateDecision",
    "RateLimiter",
    "Store",
    "audit",
    "conversation_state",
    "escalations",
    "hash_key",
    "key_cooldowns",
    "layerguard_meta",
    "make_rate_limiter",
    "metadata",
    "normalize_url",
    "rate_events",
    "rate_keys",
    "retry_after_header",
]
