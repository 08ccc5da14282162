"""The store and two service replicas on a real PostgreSQL server.

Runs when ``LAYERGUARD_TEST_PG_URL`` names a server (``.ci/run`` starts one with
``scripts/pg_test_server.sh``); each test gets a database of its own. Without it the tests
are skipped, and say why.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import httpx
import pytest

from layerguard.service.storage import Store
from tests.service.helpers import KEYS, FakeBackend, LiveServer, check_replicas, make_config, make_guard, openai_client

PG_URL = os.environ.get("LAYERGUARD_TEST_PG_URL")
pytestmark = pytest.mark.skipif(not PG_URL, reason="no PostgreSQL server: set LAYERGUARD_TEST_PG_URL (see .ci/run)")


def user(text: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]


@pytest.fixture()
def pg_url() -> Iterator[str]:
    """A fresh database on the test server, dropped afterwards."""
    import psycopg
    from sqlalchemy.engine import make_url

    assert PG_URL is not None
    base = make_url(PG_URL)
    name = "lg_" + uuid.uuid4().hex[:12]
    dsn = f"host={base.host} port={base.port} user={base.username} dbname={base.database}"
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    yield base.set(database=name).render_as_string(hide_password=False)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE {name} WITH (FORCE)")


def test_two_stores_act_as_replicas(pg_url):
    a, b = Store(pg_url), Store(pg_url)
    try:
        assert not a.is_sqlite and a.ping()
        check_replicas(a, b)
    finally:
        a.close()
        b.close()


def test_two_service_replicas_share_conversations_escalations_and_limits(pg_url):
    from layerguard.service.app import create_app

    stores = [Store(pg_url), Store(pg_url)]
    config = make_config(rate_limiter="db")
    servers = [
        LiveServer(create_app(make_guard(s, burst_blocks=0), FakeBackend(), s, config))  # type: ignore[arg-type]
        for s in stores
    ]
    try:
        # a Crescendo conversation spread over both replicas is escalated at its fifth turn, once
        finishes, eids = [], []
        for i in range(6):
            client = openai_client(servers[i % 2])
            resp = client.chat.completions.create(
                model="fake-model", messages=user(f"step {i} risk=0.4"), extra_headers={"X-Conversation-Id": "pg-c1"}
            )
            finishes.append(resp.choices[0].finish_reason)
            eids.append(resp.model_extra["layerguard"].get("escalation_id"))
        assert finishes == ["stop"] * 4 + ["content_filter"] * 2
        assert eids[4] is not None and eids[4] == eids[5]
        admin = {"Authorization": f"Bearer {KEYS['admin']}"}
        listed = httpx.get(f"{servers[0].url}/v1/escalations", headers=admin, timeout=10).json()["data"]
        assert [e["id"] for e in listed] == [eids[4]] and listed[0]["hits"] == 2
        # the `limited` key allows 3 requests a minute in total, whichever replica serves them
        codes = []
        for i in range(4):
            r = httpx.post(
                f"{servers[i % 2].url}/v1/chat/completions",
                json={"model": "fake-model", "messages": user(f"hello {i}")},
                headers={"Authorization": f"Bearer {KEYS['limited']}"},
                timeout=10,
            )
            codes.append(r.status_code)
        assert codes == [200, 200, 200, 429]
        # both replicas wrote their audit records into the one database
        assert len(stores[0].audit_ids()) >= 10 and stores[0].audit_ids() == stores[1].audit_ids()
    finally:
        for server in servers:
            server.stop()
        for s in stores:
            s.close()
