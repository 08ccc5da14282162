"""The service database's tables, its schema version and the in-place migrations."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Literal

from sqlalchemy import JSON, Column, Connection, Float, Index, Integer, MetaData, String, Table, Text, update

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


def migrate(conn: Connection, version: int) -> None:
    """Bring a database written by an earlier layerguard up to :data:`SCHEMA_VERSION`, in place."""
    if version < 2:
        conn.exec_driver_sql("ALTER TABLE escalations ADD COLUMN dedupe_key VARCHAR(64)")
        conn.exec_driver_sql("ALTER TABLE escalations ADD COLUMN hits INTEGER NOT NULL DEFAULT 1")
        conn.exec_driver_sql("CREATE INDEX IF NOT EXISTS ix_escalations_dedupe_key ON escalations (dedupe_key)")
    conn.execute(
        update(layerguard_meta).where(layerguard_meta.c.key == "schema_version").values(value=str(SCHEMA_VERSION))
    )
