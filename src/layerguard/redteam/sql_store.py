"""A run store behind any SQLAlchemy URL (SQLite file, PostgreSQL, ...), for runs shared between hosts.

Same contract as :class:`~layerguard.redteam.store.RunStore`: the run's identity is stored once
and a different run at the same URL is refused; a cell (sample x attack x guarded) is stored
exactly once, the first time it is committed, however many times it arrives (a chunk
recomputed after a worker died, two drivers resuming the same run). The rows of the two
stores are the same JSON.
"""

from __future__ import annotations

import json
import re
import threading
from pathlib import Path
from typing import Any

from layerguard.errors import InvalidInputError
from layerguard.redteam.store import RunStore


def _shown(url: str) -> str:
    return re.sub(r"//([^:/@]*):[^@/]*@", r"//\1:***@", url)


class SqlRunStore(RunStore):
    """Cells of one run in tables ``run_meta`` and ``run_cells`` of a SQLAlchemy database.

    Args:
        url: A SQLAlchemy URL, e.g. ``sqlite:///runs/a/run.sqlite`` or ``postgresql+psycopg://u:p@host/db``.
        identity: The run's identity (see :meth:`Runner.open`).

    Raises:
        InvalidInputError: an invalid URL, a missing driver, an unreachable database, or a
            different run stored there.
    """

    def __init__(self, url: str, identity: dict[str, Any]) -> None:  # noqa: D417 (documented on the class)
        import sqlalchemy as sa
        from sqlalchemy.exc import ArgumentError, OperationalError

        self.url = url
        self._lock = threading.Lock()
        meta = sa.MetaData()
        self._meta_t = sa.Table(
            "run_meta", meta, sa.Column("key", sa.String(64), primary_key=True), sa.Column("value", sa.Text)
        )
        self._cells_t = sa.Table(
            "run_cells",
            meta,
            sa.Column("cell_id", sa.String(512), primary_key=True),
            sa.Column("sample_id", sa.String(256), nullable=False),
            sa.Column("attack", sa.String(128), nullable=False),
            sa.Column("guarded", sa.Integer, nullable=False),
            sa.Column("row", sa.Text, nullable=False),
        )
        try:
            parsed = sa.engine.make_url(url)
            if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
                Path(parsed.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
            self._engine = sa.create_engine(url, future=True)
            meta.create_all(self._engine)
            with self._engine.begin() as con:
                row = con.execute(sa.select(self._meta_t.c.value).where(self._meta_t.c.key == "identity")).first()
                ident = json.dumps(identity, sort_keys=True)
                if row is None:
                    con.execute(sa.insert(self._meta_t).values(key="identity", value=ident))
                    return
        except (ArgumentError, ImportError) as exc:
            raise InvalidInputError(
                f"cannot use run store URL {_shown(url)}: {exc}",
                hint="e.g. sqlite:///runs/a/run.sqlite or postgresql+psycopg://user:pw@host/db",
            ) from None
        except OperationalError as exc:
            raise InvalidInputError(
                f"cannot reach the run store {_shown(url)}: {exc.orig}", hint="check the URL and that the server is up"
            ) from None
        if row[0] != ident:
            old = json.loads(row[0])
            diff = sorted(k for k in set(old) | set(identity) if old.get(k) != identity.get(k))
            raise InvalidInputError(
                f"{_shown(url)} holds a different run (differs in: {', '.join(diff)})",
                hint="use another database (or sqlite file) for this run; nothing was overwritten",
            )

    def done(self) -> set[str]:
        """Ids of committed cells."""
        import sqlalchemy as sa

        with self._lock, self._engine.connect() as con:
            return {r[0] for r in con.execute(sa.select(self._cells_t.c.cell_id))}

    def put(self, rows: list[dict[str, Any]]) -> None:
        """Commit the cells not stored yet (one transaction); cells already stored are left as they are."""
        import sqlalchemy as sa
        from sqlalchemy.exc import IntegrityError

        by_id = {self.cell_id(r["sample_id"], r["attack"], r["guarded"]): r for r in rows}
        for _ in range(3):  # another writer may commit one of these cells between our read and our insert
            try:
                with self._lock, self._engine.begin() as con:
                    t = self._cells_t
                    have = {r[0] for r in con.execute(sa.select(t.c.cell_id).where(t.c.cell_id.in_(by_id)))}
                    new = [
                        {
                            "cell_id": cid,
                            "sample_id": r["sample_id"],
                            "attack": r["attack"],
                            "guarded": int(r["guarded"]),
                            "row": json.dumps(r, default=float),
                        }
                        for cid, r in by_id.items()
                        if cid not in have
                    ]
                    if new:
                        con.execute(sa.insert(t), new)
                return
            except IntegrityError:
                continue
        raise InvalidInputError(f"could not commit {len(by_id)} cells to {_shown(self.url)} (concurrent writers)")

    def rows(self) -> list[dict[str, Any]]:
        """All cells, ordered by attack, sample, guarded."""
        import sqlalchemy as sa

        t = self._cells_t
        with self._lock, self._engine.connect() as con:
            cur = con.execute(sa.select(t.c.attack, t.c.sample_id, t.c.guarded, t.c.row))
            keyed = [(r[0], r[1], r[2], r[3]) for r in cur]
        # sorted here, not by the database: a server's collation may order text differently from SQLite's bytes
        return [json.loads(row) for *_, row in sorted(keyed, key=lambda k: (k[0], k[1], k[2]))]

    def close(self) -> None:
        """Dispose of the engine's connections."""
        self._engine.dispose()
