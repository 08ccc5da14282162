"""The service end to end: a real uvicorn server driven by the official openai client and httpx."""

from __future__ import annotations

import json

import httpx
import openai
import pytest

from layerguard.service.storage import hash_key
from tests.service.helpers import CANNED, KEYS, openai_client

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather of a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}
DELETE_TOOL = {"type": "function", "function": {"name": "delete_all", "parameters": {"type": "object"}}}
TRANSFER_TOOL = {"type": "function", "function": {"name": "transfer_money", "parameters": {"type": "object"}}}


def user(text: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]


def post(server, path: str, body, key: str | None = KEYS["user"], **kw) -> httpx.Response:
    headers = kw.pop("headers", {})
    if key is not None:
        headers["Authorization"] = f"Bearer {key}"
    if not isinstance(body, dict | list):
        return httpx.post(f"{server.url}{path}", content=body, headers=headers, timeout=30, **kw)
    return httpx.post(f"{server.url}{path}", json=body, headers=headers, timeout=30, **kw)


def chat_body(text: str = "hi", **extra) -> dict:
    return {"model": "fake-model", "messages": user(text), **extra}


def assert_error(r: httpx.Response, status: int, *needles: str) -> dict:
    assert r.status_code == status, r.text
    err = r.json()["error"]
    assert set(err) >= {"message", "type", "code"}
    for n in needles:
        assert n.lower() in err["message"].lower(), err["message"]
    assert "Traceback" not in r.text
    return err


# ---------------------------------------------------------------------------- happy paths


def test_chat_non_stream(service):
    client = openai_client(service)
    resp = client.chat.completions.create(model="fake-model", messages=user("Say hello"))
    choice = resp.choices[0]
    assert choice.message.content == CANNED and choice.finish_reason == "stop"
    assert resp.usage is not None and resp.usage.prompt_tokens == 7 and resp.usage.completion_tokens == 11
    ext = resp.model_extra["layerguard"]
    assert ext["verdict"]["decision"] == "allow" and ext["verdict"]["unavailable"] == []
    assert {r["ring"] for r in ext["verdict"]["rings"]} >= {"blocker", "latent_sim", "conversation"}
    rows = service.store.list_audit(request_id=ext["request_id"])
    assert len(rows) == 1
    row = rows[0]
    assert row["decision"] == "allow" and row["finish_reason"] == "stop" and row["status"] == 200
    assert row["api_key_hash"] == hash_key(KEYS["user"]) and row["prompt_preview"] == "Say hello"
    assert row["model"] == "fake-model" and row["completion_tokens"] == 11 and len(row["prompt_sha256"]) == 64
    # the raw key is stored nowhere
    for suffix in ("", "-wal"):
        path = service.db_path.with_name(service.db_path.name + suffix)
        if path.exists():
            assert KEYS["user"].encode() not in path.read_bytes()


def test_chat_stream(service):
    client = openai_client(service)
    stream = client.chat.completions.create(
        model="fake-model", messages=user("Say hello"), stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert text == CANNED and finishes == ["stop"]
    assert chunks[-1].usage is not None and chunks[-1].usage.total_tokens == 18
    last = [c for c in chunks if c.choices][-1]
    rid = last.model_extra["layerguard"]["request_id"]
    assert service.store.list_audit(request_id=rid)[0]["finish_reason"] == "stop"  # committed before [DONE]


def test_tool_call_returned(service):
    client = openai_client(service)
    resp = client.chat.completions.create(model="fake-model", messages=user("TOOL weather?"), tools=[WEATHER_TOOL])
    msg = resp.choices[0].message
    assert resp.choices[0].finish_reason == "tool_calls" and msg.content == "Let me check."
    assert len(msg.tool_calls) == 1
    call = msg.tool_calls[0]
    assert call.type == "function" and call.function.name == "get_weather" and call.id.startswith("call_")
    assert json.loads(call.function.arguments) == {"city": "Paris"}
    assert resp.model_extra["layerguard"]["tool_calls"][0]["decision"] == "allow"
    # streamed: the tool-call text never reaches the client as content
    chunks = list(
        client.chat.completions.create(
            model="fake-model", messages=user("TOOL weather?"), tools=[WEATHER_TOOL], stream=True
        )
    )
    content = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    calls = [tc for c in chunks if c.choices for tc in (c.choices[0].delta.tool_calls or [])]
    assert "<tool" not in content and content.strip() == "Let me check."
    assert [tc.function.name for tc in calls] == ["get_weather"] and chunks[-1].choices[0].finish_reason == "tool_calls"
    # without tools in the request, the text passes through untouched
    resp = client.chat.completions.create(model="fake-model", messages=user("TOOL weather?"))
    assert "<tool_call>" in resp.choices[0].message.content and resp.choices[0].message.tool_calls is None


def test_tool_gate_removes_blocked_and_withholds_escalated_calls(service):
    client = openai_client(service)
    resp = client.chat.completions.create(
        model="fake-model", messages=user("DELETE stuff"), tools=[WEATHER_TOOL, DELETE_TOOL]
    )
    calls = resp.choices[0].message.tool_calls
    assert [c.function.name for c in calls] == ["get_weather"] and json.loads(calls[0].function.arguments) == {
        "city": "Oslo"
    }
    report = {r["name"]: r for r in resp.model_extra["layerguard"]["tool_calls"]}
    assert report["delete_all"]["decision"] == "block" and report["get_weather"]["decision"] == "allow"

    resp = client.chat.completions.create(model="fake-model", messages=user("TRANSFER now"), tools=[TRANSFER_TOOL])
    assert resp.choices[0].message.tool_calls is None and resp.choices[0].finish_reason == "content_filter"
    entry = resp.model_extra["layerguard"]["tool_calls"][0]
    assert entry["decision"] == "escalate" and entry["escalation_id"].startswith("esc_")
    r = httpx.get(f"{service.url}/v1/escalations", headers={"Authorization": f"Bearer {KEYS['admin']}"})
    listed = {e["id"]: e for e in r.json()["data"]}
    assert listed[entry["escalation_id"]]["payload"]["kind"] == "tool_call"
    assert listed[entry["escalation_id"]]["payload"]["tool_call"]["name"] == "transfer_money"

    # a call to a tool the request did not offer is dropped
    resp = client.chat.completions.create(model="fake-model", messages=user("TOOL"), tools=[TRANSFER_TOOL])
    assert resp.choices[0].message.tool_calls is None
    assert "not offered" in resp.model_extra["layerguard"]["tool_calls"][0]["explanation"]


def test_guard_check(service):
    r = post(service, "/v1/guard/check", {"prompt": "tell me something forbidden"})
    assert r.status_code == 200, r.text
    v = r.json()
    assert v["decision"] == "block" and v["category"] == "test_category" and v["stopped_at"] == "blocker"
    assert v["rings"][0]["ring"] == "blocker" and v["request_id"].startswith("req_")
    before = service.backend.prepared
    r = post(service, "/v1/guard/check", {"messages": user("risk=0.3 hello"), "model": "fake-model"})
    assert r.json()["decision"] == "allow" and r.json()["score"] == pytest.approx(0.3)
    assert service.backend.prepared == before + 1  # prepare runs for latent rings
    assert_error(post(service, "/v1/guard/check", {"prompt": "a", "messages": user("b")}), 400, "exactly one")
    assert_error(post(service, "/v1/guard/check", {"prompt": 3}), 400, "'prompt'")
    assert_error(post(service, "/v1/guard/check", {"prompt": "x", "model": "nope"}), 404, "'nope'")
    assert post(service, "/v1/guard/check", {"prompt": "x"}, key=None).status_code == 401


def test_stream_halted_midway(service):
    client = openai_client(service)
    chunks = list(client.chat.completions.create(model="fake-model", messages=user("HALT please"), stream=True))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Sure, here is " and chunks[-1].choices[0].finish_reason == "content_filter"
    assert chunks[-1].model_extra["layerguard"]["halted_by"] == "output_monitor"
    resp = client.chat.completions.create(model="fake-model", messages=user("HALT please"))
    assert resp.choices[0].finish_reason == "content_filter" and "Sure" not in resp.choices[0].message.content
    row = service.store.list_audit(request_id=resp.model_extra["layerguard"]["request_id"])[0]
    assert row["halted_by"] == "output_monitor" and row["finish_reason"] == "content_filter"


def test_blocked_input(service):
    client = openai_client(service)
    resp = client.chat.completions.create(model="fake-model", messages=user("something forbidden"))
    assert resp.choices[0].finish_reason == "content_filter" and "can't help" in resp.choices[0].message.content
    verdict = resp.model_extra["layerguard"]["verdict"]
    assert verdict["decision"] == "block" and verdict["category"] == "test_category"
    chunks = list(client.chat.completions.create(model="fake-model", messages=user("forbidden"), stream=True))
    assert chunks[-1].choices[0].finish_reason == "content_filter"
    assert "can't help" in "".join(c.choices[0].delta.content or "" for c in chunks)
    row = service.store.list_audit(request_id=resp.model_extra["layerguard"]["request_id"])[0]
    assert row["decision"] == "block" and row["category"] == "test_category"


def test_rewrite(service):
    resp = openai_client(service).chat.completions.create(model="fake-model", messages=user("please-rewrite this"))
    assert resp.choices[0].message.content == "Here is a safer answer instead."
    assert resp.choices[0].finish_reason == "content_filter"
    assert resp.model_extra["layerguard"]["verdict"]["decision"] == "rewrite"


def test_escalation_created_listed_and_resolved(service):
    client = openai_client(service)
    msgs = user("this needs-review first")
    resp = client.chat.completions.create(model="fake-model", messages=msgs)
    ext = resp.model_extra["layerguard"]
    eid = ext["escalation_id"]
    assert resp.choices[0].finish_reason == "content_filter" and "human review" in resp.choices[0].message.content
    assert eid not in resp.choices[0].message.content  # ids are structured fields, not text
    admin = {"Authorization": f"Bearer {KEYS['admin']}"}
    r = httpx.get(f"{service.url}/v1/escalations?status=open", headers=admin)
    assert r.status_code == 200
    found = [e for e in r.json()["data"] if e["id"] == eid]
    assert found and found[0]["status"] == "open" and found[0]["payload"]["messages"] == msgs
    assert found[0]["api_key_hash"] == hash_key(KEYS["user"])
    # only admins
    assert_error(httpx.get(f"{service.url}/v1/escalations", headers={"Authorization": f"Bearer {KEYS['user']}"}),
                 403, "not an admin key")  # fmt: skip
    assert_error(httpx.get(f"{service.url}/v1/escalations"), 401, "API key")
    assert_error(httpx.get(f"{service.url}/v1/escalations?status=weird", headers=admin), 400, "status")
    # resolve
    r = post(service, f"/v1/escalations/{eid}", {"action": "approve", "note": "fine"}, key=KEYS["admin"])
    assert r.status_code == 200 and r.json()["status"] == "approved" and r.json()["resolved_by"] == "ops"
    assert_error(post(service, f"/v1/escalations/{eid}", {"action": "reject"}, key=KEYS["admin"]), 409, "already")
    assert_error(post(service, "/v1/escalations/esc_missing", {"action": "reject"}, key=KEYS["admin"]), 404, "esc_m")
    assert_error(post(service, f"/v1/escalations/{eid}", {"action": "maybe"}, key=KEYS["admin"]), 400, "action")
    assert_error(post(service, f"/v1/escalations/{eid}", {"action": "reject"}), 403, "admin")
    assert eid not in [e["id"] for e in httpx.get(f"{service.url}/v1/escalations", headers=admin).json()["data"]]
    # the approved request may now be answered (same messages, same key, with the header)
    again = client.chat.completions.create(
        model="fake-model", messages=msgs, extra_headers={"X-Layerguard-Escalation": eid}
    )
    assert again.choices[0].message.content == CANNED
    assert again.model_extra["layerguard"]["escalation_override"] == eid
    other = client.chat.completions.create(
        model="fake-model", messages=user("another needs-review"), extra_headers={"X-Layerguard-Escalation": eid}
    )
    assert other.choices[0].finish_reason == "content_filter"  # the approval covers only those messages
    # reject path
    eid2 = other.model_extra["layerguard"]["escalation_id"]
    r = post(service, f"/v1/escalations/{eid2}", {"status": "rejected", "note": "no"}, key=KEYS["admin"])
    assert r.json()["status"] == "rejected" and r.json()["note"] == "no"
    r = httpx.get(f"{service.url}/v1/escalations?status=rejected", headers=admin)
    assert eid2 in [e["id"] for e in r.json()["data"]]


# ------------------------------------------------------------------------------ 4xx cases


def test_auth_errors(service):
    assert_error(post(service, "/v1/chat/completions", chat_body(), key=None), 401, "missing api key")
    assert_error(post(service, "/v1/chat/completions", chat_body(), key="sk-wrong"), 401, "incorrect api key")
    r = post(service, "/v1/chat/completions", chat_body(), key=None, headers={"Authorization": "Basic abc"})
    assert_error(r, 401, "Bearer")
    with pytest.raises(openai.AuthenticationError):
        openai_client(service, key="sk-wrong").chat.completions.create(model="fake-model", messages=user("x"))


def test_body_errors(service):
    err = assert_error(post(service, "/v1/chat/completions", b'{"model": "fake-model", "messages": [}'), 400,
                       "malformed json")  # fmt: skip
    assert err["code"] == "invalid_json"
    assert_error(post(service, "/v1/chat/completions", b"[1, 2]"), 400, "JSON object")
    assert_error(post(service, "/v1/chat/completions", b""), 400, "empty")
    assert_error(post(service, "/v1/chat/completions", b'{"model": NaN}'), 400, "NaN")
    deep = b'{"model": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    assert_error(post(service, "/v1/chat/completions", deep), 400, "malformed json")
    admin = {"Authorization": f"Bearer {KEYS['admin']}"}
    assert_error(httpx.get(f"{service.url}/v1/escalations?limit=abc", headers=admin), 400, "limit")
    bad = b'{"model": "fake-model", "messages": [{"role": "user", "content": "\xff\xfe"}]}'
    assert_error(post(service, "/v1/chat/completions", bad), 400, "UTF-8")
    surrogate = b'{"model": "fake-model", "messages": [{"role": "user", "content": "\\ud800"}]}'
    assert_error(post(service, "/v1/chat/completions", surrogate), 400, "surrogate")
    big = json.dumps(chat_body("x" * (1 << 20))).encode()
    assert_error(post(service, "/v1/chat/completions", big), 413, "too large")

    def chunked():
        for _ in range(40):
            yield b"x" * 32768

    assert_error(post(service, "/v1/chat/completions", chunked()), 413, "too large")
    assert_error(post(service, "/v1/guard/check", big), 413, "too large")


def test_field_errors(service):
    cases = [
        ({"messages": user("x")}, "Missing required field 'model'"),
        ({"model": "fake-model"}, "Missing required field 'messages'"),
        ({"model": "fake-model", "messages": "hi"}, "'messages'"),
        ({"model": "fake-model", "messages": []}, "'messages'"),
        ({"model": 7, "messages": user("x")}, "'model'"),
        ({"model": "fake-model", "messages": [{"role": "wizard", "content": "x"}]}, "'messages.0.role'"),
        ({"model": "fake-model", "messages": [{"role": "user", "content": 5}]}, "'messages.0.content'"),
        ({"model": "fake-model", "messages": [{"role": "user", "content": [{"type": "image_url"}]}]},
         "messages.0.content.0"),
        (chat_body(temperature="hot"), "'temperature'"),
        (chat_body(temperature=5), "'temperature'"),
        (chat_body(max_tokens="5"), "'max_tokens'"),
        (chat_body(max_tokens=0), "'max_tokens'"),
        (chat_body(stream="yes"), "'stream'"),
        (chat_body(n=3), "'n'"),
        (chat_body(tools=[{"type": "function"}]), "'tools.0.function'"),
        (chat_body(stop=[1]), "'stop"),
    ]  # fmt: skip
    for body, needle in cases:
        err = assert_error(post(service, "/v1/chat/completions", body), 400, needle)
        assert err["type"] == "invalid_request_error"
    # unknown fields are accepted (clients send many)
    assert post(service, "/v1/chat/completions", chat_body(frequency_penalty=0.1, logit_bias={})).status_code == 200


def test_unknown_model(service):
    err = assert_error(post(service, "/v1/chat/completions", {**chat_body(), "model": "gpt-9"}), 404, "'gpt-9'")
    assert err["code"] == "model_not_found" and "fake-model" in err["message"]
    with pytest.raises(openai.NotFoundError):
        openai_client(service).chat.completions.create(model="gpt-9", messages=user("x"))
    models = openai_client(service).models.list()
    assert [m.id for m in models.data] == ["fake-model"]


def test_rate_limits(service):
    for _ in range(3):
        assert post(service, "/v1/chat/completions", chat_body(), key=KEYS["limited"]).status_code == 200
    r = post(service, "/v1/chat/completions", chat_body(), key=KEYS["limited"])
    err = assert_error(r, 429, "rate limit", "3 requests per minute")
    assert err["code"] == "rate_limit_exceeded" and 1 <= int(r.headers["Retry-After"]) <= 60
    with pytest.raises(openai.RateLimitError):
        openai_client(service, KEYS["limited"]).chat.completions.create(model="fake-model", messages=user("x"))
    assert post(service, "/v1/chat/completions", chat_body()).status_code == 200  # other keys unaffected
    # tokens per minute: the first request spends 18 tokens of 20, the second gets in, the third waits
    assert post(service, "/v1/chat/completions", chat_body(), key=KEYS["tokens"]).status_code == 200
    assert post(service, "/v1/chat/completions", chat_body(), key=KEYS["tokens"]).status_code == 200
    r = post(service, "/v1/chat/completions", chat_body(), key=KEYS["tokens"])
    assert_error(r, 429, "20 tokens per minute")
    assert "Retry-After" in r.headers


def test_routes_and_server_errors(service):
    assert_error(httpx.get(f"{service.url}/v1/nope"), 404, "/v1/nope")
    assert_error(httpx.get(f"{service.url}/v1/chat/completions"), 405, "method not allowed")
    # a crashing ring: 500 JSON, no stack trace
    err = assert_error(post(service, "/v1/chat/completions", chat_body("RING-CRASH")), 500, "internal server error")
    assert err["type"] == "server_error"
    # a crashing backend: 502 JSON (non-stream), an error event then [DONE] (stream)
    assert_error(post(service, "/v1/chat/completions", chat_body("CRASH")), 502, "backend failed")
    with pytest.raises(openai.APIError):
        list(openai_client(service).chat.completions.create(model="fake-model", messages=user("CRASH"), stream=True))


def test_health_ready_metrics(service):
    admin = {"Authorization": f"Bearer {KEYS['admin']}"}
    assert httpx.get(f"{service.url}/healthz").json()["status"] == "ok"
    assert httpx.get(f"{service.url}/readyz").json() == {"status": "ready"}  # details for operators only
    r = httpx.get(f"{service.url}/readyz", headers=admin)
    assert r.status_code == 200 and r.json()["database"] == "ok" and r.json()["backend"]["backend"] == "fake"
    assert httpx.get(f"{service.url}/metrics").status_code == 401
    assert httpx.get(f"{service.url}/metrics", headers={"Authorization": f"Bearer {KEYS['user']}"}).status_code == 403
    post(service, "/v1/chat/completions", chat_body("forbidden"))
    post(service, "/v1/chat/completions", chat_body("HALT"))
    text = httpx.get(f"{service.url}/metrics", headers=admin).text
    assert 'layerguard_requests_total{decision="block",endpoint="chat.completions"}' in text
    assert 'layerguard_ring_latency_seconds_bucket{le="0.001",ring="blocker"}' in text
    assert 'layerguard_halts_total{ring="output_monitor"}' in text
    assert "layerguard_request_latency_seconds_count" in text and "layerguard_rate_limited_total" in text


# ------------------------------------------------------------- conversation ring in the service


def test_crescendo_escalates_through_the_service(make_service):
    server = make_service(burst_blocks=0)
    client = openai_client(server)
    finishes, eids = [], []
    for i in range(6):
        resp = client.chat.completions.create(
            model="fake-model", messages=user(f"step {i} risk=0.4"), extra_headers={"X-Conversation-Id": "crescendo-1"}
        )
        finishes.append(resp.choices[0].finish_reason)
        eids.append(resp.model_extra["layerguard"].get("escalation_id"))
    assert finishes == ["stop"] * 4 + ["content_filter"] * 2
    ext = resp.model_extra["layerguard"]
    conv = next(r for r in ext["verdict"]["rings"] if r["ring"] == "conversation")
    assert conv["decision"] == "escalate" and conv["category"] == "crescendo" and ext["escalation_id"]
    # one escalation for the conversation, not one per turn: the reviewer sees its hit count
    assert eids[4] == eids[5] and server.store.get_escalation(eids[5])["hits"] == 2
    # the same turns in another conversation (the `user` field) start from zero
    resp = client.chat.completions.create(model="fake-model", messages=user("step 0 risk=0.4"), user="other-conv")
    assert resp.choices[0].finish_reason == "stop"


def test_burst_of_blocked_attempts_blocks_the_key(make_service):
    server = make_service(burst_blocks=3, burst_window_s=60, cooldown_s=60)
    client = openai_client(server, KEYS["burst"])
    for i in range(4):  # blocked by one ring alone: never counts towards a lock-out
        resp = client.chat.completions.create(model="fake-model", messages=user(f"forbidden {i}"))
        assert resp.choices[0].finish_reason == "content_filter"
    ok = client.chat.completions.create(model="fake-model", messages=user("a harmless question"))
    assert ok.choices[0].finish_reason == "stop", ok.model_extra["layerguard"]
    for i in range(3):  # two rings agree (a second opinion): these count
        resp = client.chat.completions.create(model="fake-model", messages=user(f"forbidden risk=0.9 {i}"))
        assert resp.choices[0].finish_reason == "content_filter"
    resp = client.chat.completions.create(model="fake-model", messages=user("a harmless question"))
    assert resp.choices[0].finish_reason == "content_filter"
    conv = next(r for r in resp.model_extra["layerguard"]["verdict"]["rings"] if r["ring"] == "conversation")
    assert conv["decision"] == "block" and "blocked for" in conv["explanation"]
    ok = openai_client(server).chat.completions.create(model="fake-model", messages=user("a harmless question"))
    assert ok.choices[0].finish_reason == "stop"


def test_client_disconnect_mid_stream_is_audited_and_frees_the_slot(make_service):
    import time

    from tests.service.helpers import make_config

    server = make_service(config=make_config(generation_concurrency=1, queue_timeout_s=5), burst_blocks=0)
    body = chat_body("SLOW please", stream=True)
    headers = {"Authorization": f"Bearer {KEYS['user']}"}
    with httpx.stream("POST", f"{server.url}/v1/chat/completions", json=body, headers=headers, timeout=30) as r:
        assert r.status_code == 200
        rid = r.headers["X-Request-Id"]
        for line in r.iter_lines():
            if "tok1" in line:
                break  # leave mid-stream
    deadline = time.monotonic() + 10
    while not server.store.list_audit(request_id=rid) and time.monotonic() < deadline:
        time.sleep(0.05)
    row = server.store.list_audit(request_id=rid)[0]
    assert row["finish_reason"] == "client_disconnected" and row["status"] == 499
    # the single generation slot is free again
    resp = openai_client(server).chat.completions.create(model="fake-model", messages=user("hi"))
    assert resp.choices[0].message.content == CANNED


def test_audit_redaction(make_service):
    from tests.service.helpers import make_config

    server = make_service(config=make_config(redact_patterns=[r"\d{3}-\d{2}-\d{4}"], preview_chars=30))
    resp = openai_client(server).chat.completions.create(
        model="fake-model", messages=user("my ssn is 123-45-6789 and a long tail of text after it")
    )
    row = server.store.list_audit(request_id=resp.model_extra["layerguard"]["request_id"])[0]
    assert row["prompt_preview"] == "my ssn is [REDACTED] and a lon" and "6789" not in row["prompt_preview"]
    hidden = make_service(config=make_config(redact_prompts=True))
    resp = openai_client(hidden).chat.completions.create(model="fake-model", messages=user("secret needs-review"))
    row = hidden.store.list_audit(request_id=resp.model_extra["layerguard"]["request_id"])[0]
    assert row["prompt_preview"] == "[redacted]" and len(row["prompt_sha256"]) == 64
    esc = hidden.store.get_escalation(resp.model_extra["layerguard"]["escalation_id"])
    assert "messages" not in esc["payload"] and "secret" not in json.dumps(esc["payload"])


def test_keys_in_urls_are_refused_and_aborted_uploads_are_clean(service, caplog):
    import socket
    import time

    admin = {"Authorization": f"Bearer {KEYS['admin']}"}

    def server_errors() -> float:
        text = httpx.get(f"{service.url}/metrics", headers=admin).text
        return sum(float(line.split()[-1]) for line in text.splitlines() if 'status="500"' in line)

    before = server_errors()
    r = httpx.post(f"{service.url}/v1/guard/check?api_key={KEYS['user']}", json={"prompt": "hi"})
    assert r.status_code == 400 and r.json()["error"]["code"] == "key_in_url"
    # an upload that stops half-way: no 500, no traceback
    with socket.create_connection(("127.0.0.1", service.port)) as sock:
        sock.sendall(
            b"POST /v1/guard/check HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            + f"Authorization: Bearer {KEYS['user']}\r\nContent-Length: 5000\r\n\r\n".encode()
            + b'{"prompt": "'
        )
    time.sleep(0.5)
    assert server_errors() == before
    assert not [rec for rec in caplog.records if rec.levelname == "ERROR" and "unhandled" in rec.getMessage()]
