"""UpstreamBackend against a real upstream (another test service), and `layerguard serve --upstream`."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import openai
import pytest

from layerguard.guard.backends.upstream import UpstreamBackend, UpstreamError
from layerguard.guard.build import load_guard
from layerguard.guard.pipeline import Guard
from layerguard.service.config import ServiceConfig
from tests.service.helpers import CANNED, KEYS, ToolGateStub, WordRing, openai_client

GUARD_YAML = """\
model: {name: fake-model, weights_sha256: "0000"}
rings:
  - {name: keyword}
  - {name: latent, params: {path: latent}}
service:
  api_keys:
    - {key_env: FRONT_KEY, name: front, admin: true}
"""


def write_guard(tmp_path: Path) -> Path:
    p = tmp_path / "guard.yaml"
    p.write_text(GUARD_YAML)
    return p


def test_upstream_backend_through_a_front_service(service, make_service, tmp_path):
    g = load_guard(write_guard(tmp_path), None, text_only=True)
    assert g.unavailable == ["latent"] and g.names == ["keyword"]
    guard = Guard([*g.rings, WordRing("blocker", "forbidden", "block"), ToolGateStub()], unavailable=g.unavailable)
    backend = UpstreamBackend(f"{service.url}/v1", "fake-model", api_key=KEYS["user"])
    front = make_service(guard=guard, backend=backend)
    client = openai_client(front)
    resp = client.chat.completions.create(model="fake-model", messages=[{"role": "user", "content": "hello"}])
    assert resp.choices[0].message.content == CANNED
    ext = resp.model_extra["layerguard"]
    assert ext["verdict"]["unavailable"] == ["latent"]  # listed in every verdict
    assert resp.usage is not None and resp.usage.completion_tokens == 11  # the upstream's usage
    chunks = list(
        client.chat.completions.create(model="fake-model", messages=[{"role": "user", "content": "hello"}], stream=True)
    )
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == CANNED
    # structured tool calls from the upstream are re-parsed and gated again at the front
    tools = [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}},
             {"type": "function", "function": {"name": "delete_all", "parameters": {"type": "object"}}}]  # fmt: skip
    resp = client.chat.completions.create(
        model="fake-model", messages=[{"role": "user", "content": "DELETE"}], tools=tools
    )
    assert [c.function.name for c in resp.choices[0].message.tool_calls] == ["get_weather"]
    # the keyword ring works on the text-only path
    resp = client.chat.completions.create(model="fake-model", messages=[{"role": "user", "content": "build a bomb"}])
    assert resp.choices[0].finish_reason == "content_filter"
    # the upstream's halt arrives as content_filter
    resp = client.chat.completions.create(model="fake-model", messages=[{"role": "user", "content": "HALT"}])
    assert resp.choices[0].finish_reason == "content_filter"
    admin = {"Authorization": f"Bearer {KEYS['admin']}"}  # the details are for operators
    assert httpx.get(f"{front.url}/readyz", headers=admin).json()["backend"]["backend"] == "upstream"


def test_upstream_errors(service, make_service):
    bad_model = UpstreamBackend(f"{service.url}/v1", "no-such-model", api_key=KEYS["user"], served_name="front")
    front = make_service(guard=Guard([]), backend=bad_model)
    with pytest.raises(openai.APIStatusError) as exc:
        openai_client(front).chat.completions.create(model="front", messages=[{"role": "user", "content": "x"}])
    assert exc.value.status_code == 502 and "no-such-model" in exc.value.message
    dead = UpstreamBackend("http://127.0.0.1:9/v1", "m", timeout_s=2)
    assert not dead.ready()
    front2 = make_service(guard=Guard([]), backend=dead)
    assert httpx.get(f"{front2.url}/readyz").status_code == 503
    with pytest.raises(UpstreamError, match="not an http"):
        UpstreamBackend("ftp://x", "m")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_serve_cli_with_upstream(service, tmp_path):
    guard = write_guard(tmp_path)
    port = free_port()
    env = {**os.environ, "FRONT_KEY": "front-secret", "LAYERGUARD_UPSTREAM_API_KEY": KEYS["user"]}
    cmd = [sys.executable, "-m", "layerguard.cli", "serve", "--guard", str(guard), "--port", str(port),
           "--upstream", f"{service.url}/v1", "--db", str(tmp_path / "cli.db"), "--log-level", "warning"]  # fmt: skip
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert proc.poll() is None, proc.communicate()[1]
            assert time.monotonic() < deadline, "serve did not start"
            time.sleep(0.2)
        r = httpx.post(
            f"http://127.0.0.1:{port}/v1/chat/completions",
            headers={"Authorization": "Bearer front-secret"},
            json={"model": "fake-model", "messages": [{"role": "user", "content": "hello"}]},
            timeout=30,
        )
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["choices"][0]["message"]["content"] == CANNED
        rings = [x["ring"] for x in body["layerguard"]["verdict"]["rings"]]
        assert rings == ["keyword", "conversation"] and body["layerguard"]["verdict"]["unavailable"] == ["latent"]
        ready = httpx.get(f"http://127.0.0.1:{port}/readyz").json()
        assert ready["status"] == "ready", json.dumps(ready)
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_serve_cli_user_errors(tmp_path):
    guard = write_guard(tmp_path)
    env = {k: v for k, v in os.environ.items() if k not in ("FRONT_KEY", "LAYERGUARD_API_KEY")}
    cmd = [
        sys.executable,
        "-m",
        "layerguard.cli",
        "serve",
        "--guard",
        str(guard),
        "--upstream",
        "http://127.0.0.1:9/v1",
    ]
    p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert p.returncode == 2 and "FRONT_KEY is not set" in p.stderr and "Traceback" not in p.stderr
    cfg = tmp_path / "service.yaml"
    cfg.write_text("port: 1\n")
    p = subprocess.run([*cmd, "--config", str(cfg)], env=env, capture_output=True, text=True, timeout=120)
    assert p.returncode == 2 and "no API keys configured" in p.stderr and "LAYERGUARD_API_KEY" in p.stderr
    cfg.write_text("api_keys: [{key: k, name: a}]\nbogus: 1\n")
    p = subprocess.run([*cmd, "--config", str(cfg)], env=env, capture_output=True, text=True, timeout=120)
    assert p.returncode == 2 and "bogus" in p.stderr and "Traceback" not in p.stderr
    assert ServiceConfig.load(guard, env={}).api_keys[0].key_env == "FRONT_KEY"
