"""The pieces of the distributed executors that need no cluster: errors, the SQL run store, shards, chunk keys."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from layerguard.data.samples import Sample
from layerguard.distributed.cluster import check_reachable, require_ray
from layerguard.distributed.filter import cut_shards
from layerguard.errors import InvalidInputError, MissingPackageError
from layerguard.redteam.executors import chunk_key
from layerguard.redteam.sql_store import SqlRunStore
from layerguard.redteam.store import RunStore


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # closed again when this returns


def test_missing_ray_is_a_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray now raises ImportError
    with pytest.raises(MissingPackageError, match="'ray' package") as exc:
        require_ray()
    assert "layerguard[ray]" in str(exc.value.hint)


def test_a_dead_address_fails_fast_with_a_hint():
    with pytest.raises(InvalidInputError, match="no Ray cluster answers at 127.0.0.1") as exc:
        check_reachable(f"127.0.0.1:{_closed_port()}", timeout_s=2)
    assert "ray start --head" in str(exc.value.hint)
    with pytest.raises(InvalidInputError, match="is not host:port"):
        check_reachable("127.0.0.1")


def test_cli_audit_with_a_dead_ray_address_prints_error_and_hint_before_loading_anything(tmp_path):
    env = {**os.environ, "LAYERGUARD_PROGRESS": "0"}
    cmd = [sys.executable, "-m", "layerguard.cli", "audit", "-m", "smollm2-135m", "-o", str(tmp_path / "a")]
    cmd += ["--executor", "ray", "--ray-address", f"127.0.0.1:{_closed_port()}"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env)
    assert proc.returncode == 2, proc.stderr
    assert "error: no Ray cluster answers at 127.0.0.1" in proc.stderr and "hint:" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "a").exists()  # nothing was built or written


def test_sql_run_store_keeps_each_cell_once_and_refuses_another_run(tmp_path):
    url = f"sqlite:///{tmp_path / 'db' / 'run.sqlite'}"
    store = SqlRunStore(url, {"model": "m", "config": {"seed": 0}})
    row = {"sample_id": "s1", "attack": "direct", "guarded": False, "response": "first"}
    store.put([row, {**row, "guarded": True}])
    store.put([{**row, "response": "second"}, {**row, "sample_id": "s0"}])  # a recomputed cell arrives again
    rows = store.rows()
    assert [(r["sample_id"], r["guarded"]) for r in rows] == [("s0", False), ("s1", False), ("s1", True)]
    assert rows[1]["response"] == "first"
    assert store.done() == {RunStore.cell_id("s0", "direct", False)} | {
        RunStore.cell_id("s1", "direct", g) for g in (False, True)
    }
    store.close()
    again = SqlRunStore(url, {"model": "m", "config": {"seed": 0}})
    assert len(again.rows()) == 3
    with pytest.raises(InvalidInputError, match=r"holds a different run \(differs in: config\)"):
        SqlRunStore(url, {"model": "m", "config": {"seed": 1}})
    with pytest.raises(InvalidInputError, match="cannot use run store URL"):
        SqlRunStore("nosuchdb://x/y", {})


@pytest.mark.skipif(
    not os.environ.get("LAYERGUARD_TEST_PG_URL"), reason="LAYERGUARD_TEST_PG_URL not set (.ci/run sets it)"
)
def test_sql_run_store_on_postgresql():
    import uuid

    import sqlalchemy as sa

    url = os.environ["LAYERGUARD_TEST_PG_URL"]
    ident = {"run": uuid.uuid4().hex}
    engine = sa.create_engine(url)
    with engine.begin() as con:  # a fresh schema for this test's tables
        con.execute(sa.text("DROP TABLE IF EXISTS run_cells, run_meta"))
    store = SqlRunStore(url, ident)
    rows = [{"sample_id": f"s{i}", "attack": "b\u00e9", "guarded": bool(i % 2)} for i in range(5)]
    store.put(rows)
    store.put(rows[:2])
    assert [r["sample_id"] for r in store.rows()] == [f"s{i}" for i in range(5)]
    store.close()
    with engine.begin() as con:
        con.execute(sa.text("DROP TABLE IF EXISTS run_cells, run_meta"))


def test_chunk_keys_follow_content():
    a = Sample(id="x", prompt="how do I bake bread")
    b = Sample(id="x", prompt="how do I bake bread?")
    assert chunk_key("run", [("direct", a)]) == chunk_key("run", [("direct", a)])
    assert chunk_key("run", [("direct", a)]) != chunk_key("run", [("direct", b)])
    assert chunk_key("run", [("direct", a)]) != chunk_key("other run", [("direct", a)])
    assert chunk_key("run", [("direct", a)]) != chunk_key("run", [("roleplay", a)])


def test_jsonl_shards_cover_every_line_once(tmp_path: Path):
    lines = [b'{"text": "a"}\n', b"\n", b'{"text": "\xe2\x80\xa8 sep"}\n', b'{"text": "c"}\n', b'{"text": "d"}']
    path = tmp_path / "in.jsonl"
    path.write_bytes(b"".join(lines))
    shards = cut_shards(path, 2)
    assert [(s.first_line, s.end - s.start) for s in shards] == [
        (0, len(lines[0]) + len(lines[1])),
        (2, len(lines[2]) + len(lines[3])),
        (4, len(lines[4])),
    ]
    assert shards[0].start == 0 and all(a.end == b.start for a, b in zip(shards, shards[1:]))
    assert len({s.name for s in shards}) == 3
    assert cut_shards(path, 100)[0].end == path.stat().st_size
