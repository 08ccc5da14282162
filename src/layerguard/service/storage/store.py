"""The service's SQL store: one class with the audit log, escalations and per-key state."""

from __future__ import annotations

from layerguard.service.storage.keys import KeyStateOps
from layerguard.service.storage.records import AuditOps, EscalationOps


class Store(AuditOps, EscalationOps, KeyStateOps):
    """Thread-safe SQL store of the service.

    Args:
        url: SQLAlchemy URL or a path (SQLite file). ``sqlite://`` is an in-memory database
            (one process; for tests).
        sqlite_synchronous: SQLite ``PRAGMA synchronous`` (``FULL``, ``NORMAL`` or ``EXTRA``); see
            :mod:`layerguard.service.storage` for what each guarantees.
        busy_timeout_ms: How long a SQLite writer waits for another process's lock.
        echo: Log SQL.

    Raises:
        InvalidInputError: a malformed URL, a missing driver, or a database that cannot be opened.
    """
