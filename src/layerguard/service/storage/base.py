"""The store's plumbing: engine and connection settings, transactions, schema creation."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal

from sqlalchemy import Connection, create_engine, event, insert, select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, IntegrityError
from sqlalchemy.pool import StaticPool

from layerguard.errors import InvalidInputError
from layerguard.service.storage.schema import SCHEMA_VERSION, layerguard_meta, metadata, migrate, normalize_url


class StoreBase:
    """Engine, transactions and schema of a :class:`~layerguard.service.storage.Store` (see there for the arguments)."""

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
                        migrate(conn, int(row[0]))
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
