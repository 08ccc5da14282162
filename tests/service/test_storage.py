"""The SQL store: audit, escalations, rate limiting, two replicas on one file, SIGKILL durability, config."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from layerguard.errors import InvalidInputError
from layerguard.service.config import ServiceConfig
from layerguard.service.storage import (
    DbRateLimiter,
    MemoryRateLimiter,
    Store,
    hash_key,
    make_rate_limiter,
    normalize_url,
)
from tests.service.helpers import check_replicas


@pytest.fixture()
def store(tmp_path):
    s = Store(tmp_path / "s.db")
    yield s
    s.close()


def test_audit_roundtrip_and_unknown_fields(store):
    rid = store.add_audit(request_id="r1", decision="block", api_key_hash=hash_key("k"), rings=[{"ring": "a"}])
    rows = store.list_audit()
    assert rows[0]["id"] == rid and rows[0]["decision"] == "block" and rows[0]["rings"] == [{"ring": "a"}]
    assert rows[0]["api_key_hash"] == hash_key("k") != "k"
    with pytest.raises(ValueError, match="unknown audit fields"):
        store.add_audit(request_id="r", decision="allow", api_key="raw")


def test_sqlite_pragmas(store):
    with store.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
        conn.rollback()


def test_escalation_lifecycle(store):
    eid = store.create_escalation(request_id="r", api_key_hash="h", reason="why", payload={"kind": "input"})
    assert [e["id"] for e in store.list_escalations("open")] == [eid]
    assert store.resolve_escalation(eid, "approved", resolved_by="ops", note="ok")[0] == "ok"
    outcome, row = store.resolve_escalation(eid, "rejected", resolved_by="other")
    assert outcome == "already_resolved" and row is not None and row["status"] == "approved"
    assert row["resolved_by"] == "ops" and row["note"] == "ok"
    assert store.resolve_escalation("esc_nope", "approved", resolved_by="ops") == ("not_found", None)
    assert store.list_escalations("open") == [] and len(store.list_escalations()) == 1


def test_memory_rate_limiter_exact_across_threads():
    lim = MemoryRateLimiter()
    allowed = []

    def worker():
        for _ in range(20):
            allowed.append(lim.acquire("k", 50, None, time.time()).allowed)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(allowed) == 50
    d = lim.acquire("k", 50, None, time.time())
    assert not d.allowed and d.kind == "requests" and 0 < d.retry_after <= 60
    assert lim.acquire("other", 50, None, time.time()).allowed


def test_token_limit_and_retry_after():
    lim = MemoryRateLimiter()
    now = 1000.0
    assert lim.acquire("k", None, 100, now).allowed
    lim.add_tokens("k", 60, now)
    assert lim.acquire("k", None, 100, now + 1).allowed
    lim.add_tokens("k", 60, now + 10)
    d = lim.acquire("k", None, 100, now + 20)
    assert not d.allowed and d.kind == "tokens" and d.retry_after == pytest.approx(40.0)
    assert lim.acquire("k", None, 100, now + 61).allowed  # the first 60 left the window


def test_two_stores_on_one_file_act_as_replicas(tmp_path):
    db = tmp_path / "shared.db"
    a, b = Store(f"sqlite:///{db}"), Store(db)
    try:
        check_replicas(a, b)
    finally:
        a.close()
        b.close()


def test_urls_and_limiter_choice(tmp_path):
    assert normalize_url(tmp_path / "x.db") == f"sqlite:///{(tmp_path / 'x.db').resolve()}"
    assert normalize_url("postgresql+psycopg://u:p@h/db") == "postgresql+psycopg://u:p@h/db"
    mem = Store("sqlite://")
    try:
        mem.add_audit(request_id="r", decision="allow")
        assert mem.ping() and isinstance(make_rate_limiter(mem), MemoryRateLimiter)
        assert isinstance(make_rate_limiter(mem, "db"), DbRateLimiter)
    finally:
        mem.close()
    with pytest.raises(InvalidInputError, match="invalid database URL"):
        Store("nonsense://::")


def test_unusable_postgres_url_is_a_clear_error_without_the_password():
    try:
        import psycopg  # noqa: F401

        expected = "cannot open the database"  # driver present: nothing listens on port 1
    except ImportError:
        expected = "psycopg"  # no driver: the error names the package to install
    with pytest.raises(InvalidInputError) as exc:
        Store("postgresql+psycopg://user:secret@127.0.0.1:1/db")
    assert expected in str(exc.value) + (exc.value.hint or "") and "secret" not in str(exc.value)


CHILD = """
import sys
from layerguard.service.storage import Store
s = Store(sys.argv[1], sqlite_synchronous=sys.argv[2])
print("ready", flush=True)
i = 0
while True:
    i += 1
    rid = s.add_audit(request_id=f"child-{i}", decision="allow", prompt_preview="x" * 200)
    sys.stdout.write(f"{rid}\\n")
    sys.stdout.flush()
"""


@pytest.mark.parametrize("sync", ["FULL", "NORMAL"])
def test_sigkill_loses_no_committed_audit_record(tmp_path, sync):
    db = tmp_path / "durable.db"
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(db), sync], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "ready", proc.stderr.read() if proc.stderr else ""
        time.sleep(1.0)
        os.kill(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    lines = out.split("\n")
    committed = {int(x) for x in lines[:-1] if x.strip()}  # the last piece may be a partial line
    assert len(committed) > 10, f"child committed only {len(committed)} records in 1 s"
    s = Store(db)
    try:
        missing = committed - s.audit_ids()
        assert not missing, f"{len(missing)} committed records lost after SIGKILL"
    finally:
        s.close()
    print(f"\nSIGKILL durability ({sync}): {len(committed)} committed records, none lost")


def test_service_config_files(tmp_path: Path):
    f = tmp_path / "service.yaml"
    f.write_text(
        "service:\n  port: 9001\n  db_url: ${DBURL:-sqlite:///x.db}\n"
        "  api_keys:\n    - {key_env: MY_KEY, name: a, rpm: 5}\n    - {key: literal-key, name: b, admin: true}\n"
    )
    cfg = ServiceConfig.load(f, env={})
    assert cfg.port == 9001 and cfg.db_url == "sqlite:///x.db" and cfg.max_body_bytes == 1 << 20
    keys = cfg.resolve_keys({"MY_KEY": "secret-a"})
    assert [(k.name, k.rpm, k.admin) for k in keys] == [("a", 5, False), ("b", None, True)]
    assert keys[0].key_hash == hash_key("secret-a") and "secret-a" not in repr(cfg)
    with pytest.raises(InvalidInputError, match="MY_KEY is not set"):
        cfg.resolve_keys({})
    # the service section of a guard.yaml
    g = tmp_path / "guard.yaml"
    g.write_text("model: {name: m, weights_sha256: abc}\nrings: [{name: keyword}]\nservice: {port: 7000}\n")
    assert ServiceConfig.load(g).port == 7000
    g.write_text("model: {name: m, weights_sha256: abc}\nrings: [{name: keyword}]\n")
    assert ServiceConfig.load(g).port == 8000
    f.write_text("service: {port: lots}\n")
    with pytest.raises(InvalidInputError, match="port"):
        ServiceConfig.load(f)
    f.write_text("api_keys: [{name: x}]\n")
    with pytest.raises(InvalidInputError, match="exactly one of 'key' and 'key_env'"):
        ServiceConfig.load(f)
    f.write_text("redact_patterns: ['(unclosed']\n")
    with pytest.raises(InvalidInputError, match="redact_patterns"):
        ServiceConfig.load(f)
    with pytest.raises(InvalidInputError, match="does not exist"):
        ServiceConfig.load(tmp_path / "missing.yaml")


def test_a_schema_1_database_is_migrated_in_place(tmp_path):
    import sqlite3

    db = tmp_path / "old.db"
    Store(db).close()
    # turn it into what layerguard wrote before escalations had dedupe_key and hits
    con = sqlite3.connect(db)
    con.execute("DROP INDEX ix_escalations_dedupe_key")
    con.execute("ALTER TABLE escalations DROP COLUMN dedupe_key")
    con.execute("ALTER TABLE escalations DROP COLUMN hits")
    con.execute(
        "INSERT INTO escalations (id, ts, request_id, reason, status) VALUES ('esc_old', 1.0, 'r', 'x', 'open')"
    )
    con.execute("UPDATE layerguard_meta SET value = '1' WHERE key = 'schema_version'")
    con.commit()
    con.close()
    s = Store(db)
    try:
        assert s.get_escalation("esc_old")["hits"] == 1  # the old row is kept
        kw = {"request_id": "r", "api_key_hash": None, "reason": "x", "payload": {}}
        a = s.create_escalation(**kw, dedupe_key="t")
        assert s.create_escalation(**kw, dedupe_key="t") == a
        with s.engine.connect() as conn:
            assert conn.exec_driver_sql("SELECT value FROM layerguard_meta WHERE key='schema_version'").scalar() == "2"
    finally:
        s.close()
