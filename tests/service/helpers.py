"""Service test helpers: a fake backend, simple rings, and a real uvicorn server in a thread."""

from __future__ import annotations

import re
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from layerguard.guard.backend import Chunk, GenerationParams
from layerguard.guard.pipeline import Guard
from layerguard.guard.rings.conversation import ConversationRing
from layerguard.guard.types import Exchange, RingVerdict

CANNED = "Hello! This is a canned answer from the fake backend."
TOOL_TEXT = 'Let me check. <tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>'
DELETE_TEXT = (
    '<tool_call>{"name": "delete_all", "arguments": {"path": "/"}}</tool_call>\n'
    '<tool_call>{"name": "get_weather", "arguments": "{\\"city\\": \\"Oslo\\"}"}</tool_call>'
)
TRANSFER_TEXT = '<tool_call>{"name": "transfer_money", "arguments": {"to": "x", "amount": 1000}}</tool_call>'

KEYS = {
    "user": "sk-test-user-0123456789",
    "admin": "sk-test-admin-0123456789",
    "limited": "sk-test-limited-0123456789",
    "tokens": "sk-test-tokens-0123456789",
    "load": "sk-test-load-0123456789",
    "burst": "sk-test-burst-0123456789",
}


def pieces(text: str, n: int = 5) -> list[str]:
    """Text in n-character pieces (exercises the tool-call filter's boundaries)."""
    return [text[i : i + n] for i in range(0, len(text), n)]


class FakeBackend:
    """Deterministic backend: canned text, or behaviour chosen by a marker in the last user message.

    Markers: ``SLOW`` (40 chunks, 50 ms apart), ``HALT`` (halted mid-stream),
    ``TOOL`` / ``DELETE`` / ``TRANSFER`` (tool-call text), ``CRASH`` (raises).
    """

    model_name = "fake-model"
    text_only = True

    def __init__(self) -> None:
        self.prepared = 0
        self._lock = threading.Lock()

    def info(self) -> dict[str, Any]:
        return {"backend": "fake", "model": self.model_name}

    def prepare(self, exchange: Exchange) -> None:
        with self._lock:
            self.prepared += 1
        exchange.prefill = {"fake": True}

    def stream(self, exchange: Exchange, params: GenerationParams) -> Iterator[Chunk]:
        prompt = exchange.last_user
        usage = {"prompt_tokens": 7, "completion_tokens": 11}
        if "CRASH" in prompt:
            raise RuntimeError("backend exploded")
        if "SLOW" in prompt:
            for i in range(40):
                time.sleep(0.05)
                yield Chunk(f"tok{i} ")
            yield Chunk("", finish_reason="stop", usage=usage)
            return
        if "HALT" in prompt:
            yield Chunk("Sure, ")
            yield Chunk("here is ")
            yield Chunk("", finish_reason="content_filter", halted_by="output_monitor", monitor_score=0.93, usage=usage)
            return
        text = CANNED
        if "TOOL" in prompt:
            text = TOOL_TEXT
        elif "DELETE" in prompt:
            text = DELETE_TEXT
        elif "TRANSFER" in prompt:
            text = TRANSFER_TEXT
        for p in pieces(text):
            yield Chunk(p)
        yield Chunk("", finish_reason="stop", usage=usage)


class WordRing:
    """Decides ``decision`` when a word is in the last user message."""

    stage = "input"
    reads: tuple[str, ...] = ()

    def __init__(self, name: str, word: str, decision: str, rewrite: str | None = None) -> None:
        self.name, self.word, self.decision, self.rewrite = name, word, decision, rewrite

    def check(self, exchange: Exchange) -> RingVerdict:
        hit = self.word in exchange.last_user
        if "RING-CRASH" in exchange.last_user and self.name == "blocker":
            raise RuntimeError("ring exploded")
        return RingVerdict(
            ring=self.name,
            score=0.95 if hit else 0.0,
            decision=self.decision if hit else "allow",  # type: ignore[arg-type]
            category="test_category" if hit else None,
            explanation=f"found {self.word!r}" if hit else "clean",
            rewrite=self.rewrite if hit else None,
        )


class ScoreRing:
    """A stand-in for the latent ring: score from ``risk=0.NN`` in the prompt, blocks at 0.5."""

    name = "latent_sim"
    stage = "input"
    reads: tuple[str, ...] = ()

    def check(self, exchange: Exchange) -> RingVerdict:
        m = re.search(r"risk=([0-9.]+)", exchange.last_user)
        s = float(m.group(1)) if m else 0.02
        return RingVerdict(ring=self.name, score=s, decision="block" if s >= 0.5 else "allow")


class ToolGateStub:
    """``tool_gate``: blocks delete_all, escalates transfer_money, allows the rest."""

    name = "tool_gate"
    stage = "tool_call"
    reads: tuple[str, ...] = ()

    def check(self, exchange: Exchange) -> RingVerdict:
        decision = "allow"
        for c in exchange.tool_calls:
            if c.name == "delete_all":
                decision = "block"
            elif c.name == "transfer_money" and decision != "block":
                decision = "escalate"
        score = {"allow": 0.0, "escalate": 0.7, "block": 1.0}[decision]
        return RingVerdict(ring=self.name, score=score, decision=decision, explanation=f"stub: {decision}")  # type: ignore[arg-type]


def make_guard(state: Any = None, **conv: Any) -> Guard:
    """Test rings in the usual order; the conversation ring last."""
    return Guard(
        [
            WordRing("blocker", "forbidden", "block"),
            WordRing("reviewer", "needs-review", "escalate"),
            WordRing("rewriter", "please-rewrite", "rewrite", rewrite="Here is a safer answer instead."),
            ScoreRing(),
            ToolGateStub(),
            ConversationRing(state, **conv),
        ]
    )


def make_config(**overrides: Any) -> Any:
    from layerguard.service.config import ServiceConfig

    data: dict[str, Any] = {
        "api_keys": [
            {"key": KEYS["user"], "name": "user"},
            {"key": KEYS["admin"], "name": "ops", "admin": True},
            {"key": KEYS["limited"], "name": "limited", "rpm": 3},
            {"key": KEYS["tokens"], "name": "tokens", "tpm": 20},
            {"key": KEYS["load"], "name": "load"},
            {"key": KEYS["burst"], "name": "burst"},
        ]
    }
    data.update(overrides)
    return ServiceConfig.from_mapping(data)


class LiveServer:
    """A real uvicorn server for an ASGI app on 127.0.0.1, in a background thread."""

    def __init__(self, app: Any) -> None:
        import uvicorn

        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.server = uvicorn.Server(
            uvicorn.Config(app, log_level="warning", lifespan="off", timeout_graceful_shutdown=3, backlog=256)
        )
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 15
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.02)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(15)
        self.sock.close()


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """The main test service: FakeBackend, test rings (burst detector off), SQLite store."""
    from layerguard.service.app import create_app
    from layerguard.service.storage import Store

    db = tmp_path_factory.mktemp("svc") / "service.db"
    store = Store(db)
    backend = FakeBackend()
    guard = make_guard(store, burst_blocks=0)
    app = create_app(guard, backend, store, make_config())
    server = LiveServer(app)
    server.store, server.backend, server.db_path, server.app = store, backend, db, app  # type: ignore[attr-defined]
    yield server
    server.stop()
    store.close()


@pytest.fixture()
def make_service(tmp_path: Path) -> Iterator[Callable[..., Any]]:
    """Start extra services (own store and guard settings); stopped at the end of the test."""
    from layerguard.service.app import create_app
    from layerguard.service.storage import Store

    started: list[tuple[LiveServer, Any]] = []

    def start(guard: Guard | None = None, backend: Any = None, config: Any = None, **conv: Any) -> LiveServer:
        store = Store(tmp_path / f"svc{len(started)}.db")
        g = guard if guard is not None else make_guard(store, **conv)
        server = LiveServer(create_app(g, backend or FakeBackend(), store, config or make_config()))
        server.store = store  # type: ignore[attr-defined]
        started.append((server, store))
        return server

    yield start
    for server, store in started:
        server.stop()
        store.close()


def openai_client(server: LiveServer, key: str = KEYS["user"]) -> Any:
    from openai import OpenAI

    return OpenAI(base_url=f"{server.url}/v1", api_key=key, max_retries=0, timeout=30)


def check_replicas(a: Any, b: Any) -> None:
    """Two stores on one database act as replicas: audit ids, escalations and per-key limits are shared."""
    from layerguard.service.storage import DbRateLimiter

    ids: list[int] = []
    lock = threading.Lock()

    def writer(s: Any, n: int) -> None:
        for i in range(n):
            rid = s.add_audit(request_id=f"r{i}", decision="allow")
            with lock:
                ids.append(rid)

    threads = [threading.Thread(target=writer, args=(s, 25)) for s in (a, b, a, b)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(ids)) == 100 and a.audit_ids() == b.audit_ids() == set(ids)
    # escalations: created on one replica, deduplicated and resolved on the other
    kw = {"request_id": "r", "api_key_hash": "h", "reason": "crescendo", "payload": {"kind": "input"}}
    eid = a.create_escalation(**kw, dedupe_key="id:t1")
    assert b.create_escalation(**kw, dedupe_key="id:t1") == eid and a.get_escalation(eid)["hits"] == 2
    assert b.resolve_escalation(eid, "rejected", resolved_by="ops")[0] == "ok"
    assert a.resolve_escalation(eid, "approved", resolved_by="other")[0] == "already_resolved"
    assert a.get_escalation(eid)["status"] == "rejected"
    # the DB-backed limiter holds a per-key limit across both replicas and their threads
    la, lb = DbRateLimiter(a), DbRateLimiter(b)
    results: list[bool] = []

    def hit(lim: DbRateLimiter) -> None:
        for _ in range(6):
            results.append(lim.acquire("shared-key", 10, None, time.time()).allowed)

    threads = [threading.Thread(target=hit, args=(lim,)) for lim in (la, lb, la, lb)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(results) == 10
    la.add_tokens("tk", 500, time.time())
    assert not lb.acquire("tk", None, 100, time.time()).allowed
