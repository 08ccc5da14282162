"""The run store: one SQLite file per run, so an interrupted run resumes where it stopped.

Each cell (sample x attack x guarded) is committed as soon as it is judged; re-running
the same run skips committed cells. The run's identity (model hash, guard, attacks,
samples, seed, settings) is stored once; opening a directory that holds a *different*
run is an error, so nothing is overwritten.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from pathlib import Path
from typing import Any

from layerguard.errors import InvalidInputError

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS cells (
    cell_id TEXT PRIMARY KEY,
    sample_id TEXT NOT NULL,
    attack TEXT NOT NULL,
    guarded INTEGER NOT NULL,
    row TEXT NOT NULL
);
"""


class RunStore:
    """SQLite-backed cells of one run (WAL journal; every cell committed on write)."""

    def __init__(self, path: Path, identity: dict[str, Any]) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)
        ident = json.dumps(identity, sort_keys=True)
        row = self._db.execute("SELECT value FROM meta WHERE key='identity'").fetchone()
        if row is None:
            self._db.execute("INSERT INTO meta VALUES ('identity', ?)", (ident,))
        elif row[0] != ident:
            old = json.loads(row[0])
            diff = sorted(k for k in set(old) | set(identity) if old.get(k) != identity.get(k))
            raise InvalidInputError(
                f"{path.parent} holds a different run (differs in: {', '.join(diff)})",
                hint="choose a new --out directory; nothing was overwritten",
            )

    @staticmethod
    def cell_id(sample_id: str, attack: str, guarded: bool) -> str:
        """The primary key of a cell."""
        return f"{sample_id}|{attack}|{int(guarded)}"

    def done(self) -> set[str]:
        """Ids of committed cells."""
        with self._lock:
            return {r[0] for r in self._db.execute("SELECT cell_id FROM cells")}

    def put(self, rows: list[dict[str, Any]]) -> None:
        """Commit cells (one transaction)."""
        with self._lock:
            self._db.execute("BEGIN")
            self._db.executemany(
                "INSERT OR REPLACE INTO cells VALUES (?, ?, ?, ?, ?)",
                [
                    (
                        self.cell_id(r["sample_id"], r["attack"], r["guarded"]),
                        r["sample_id"],
                        r["attack"],
                        int(r["guarded"]),
                        json.dumps(r, default=float),
                    )
                    for r in rows
                ],
            )
            self._db.execute("COMMIT")

    def rows(self) -> list[dict[str, Any]]:
        """All cells, ordered by attack, sample, guarded."""
        with self._lock:
            cur = self._db.execute("SELECT row FROM cells ORDER BY attack, sample_id, guarded")
            return [json.loads(r[0]) for r in cur]

    def close(self) -> None:
        """Close the connection."""
        self._db.close()
