"""The service on the real smollm2 with a real guard: the model scheduler under concurrency.

The starvation reproduction of issue 13 (one stream plus 45 concurrent checks, which used to
park every worker thread behind the single generation slot), the bounded queue (503 with
``Retry-After`` only beyond it), the prompt-token limit (400 before any forward pass) and
every OpenAI turn shape through the official client.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import httpx
import openai
import pytest

from layerguard.guard.build import load_guard, local_backend_for
from tests.service.helpers import KEYS, LiveServer, make_config, openai_client


def _serve(smollm2: Any, tiny_guard: Any, tmp_path: Any, **config: Any) -> LiveServer:
    from layerguard.service.app import create_app
    from layerguard.service.storage import Store

    guard = load_guard(tiny_guard, smollm2)
    backend = local_backend_for(guard, smollm2)
    store = Store(tmp_path / "service.db")
    app = create_app(guard, backend, store, make_config(**config))
    server = LiveServer(app)
    server.backend, server.store, server.app = backend, store, app  # type: ignore[attr-defined]
    return server


def _stop(server: LiveServer) -> None:
    server.stop()
    server.app.state.service.close()  # type: ignore[attr-defined]
    server.store.close()  # type: ignore[attr-defined]


@pytest.fixture(scope="module")
def local_service(smollm2, tiny_guard, tmp_path_factory):
    server = _serve(smollm2, tiny_guard, tmp_path_factory.mktemp("sched"))
    yield server
    _stop(server)


def _checks(url: str, n: int, prompt: str = "Name a color.") -> list[httpx.Response]:
    out: list[Any] = [None] * n
    headers = {"Authorization": f"Bearer {KEYS['load']}"}

    def one(i: int) -> None:
        try:
            out[i] = httpx.post(
                f"{url}/v1/guard/check", json={"prompt": f"{prompt} ({i})"}, headers=headers, timeout=120
            )
        except httpx.HTTPError as exc:
            out[i] = exc

    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(180)
    return out


def test_one_stream_and_45_checks_all_complete(local_service):
    """The starvation reproduction: the stream keeps streaming, every check is answered, /readyz answers."""
    sched = local_service.app.state.service.dispatch.scheduler
    client = openai_client(local_service)
    stream_parts: list[Any] = []

    def stream() -> None:
        stream_parts.extend(
            client.chat.completions.create(
                model=local_service.backend.model_name,
                stream=True,
                max_tokens=40,
                messages=[{"role": "user", "content": "Write a short story about a lighthouse keeper."}],
            )
        )

    st = threading.Thread(target=stream)
    st.start()
    time.sleep(0.2)
    results: list[Any] = []
    ct = threading.Thread(target=lambda: results.extend(_checks(local_service.url, 45)))
    ct.start()
    time.sleep(0.5)
    ready = httpx.get(f"{local_service.url}/readyz", timeout=30)
    ct.join(300)
    st.join(300)
    assert ready.status_code == 200
    failed = [r for r in results if not isinstance(r, httpx.Response)]
    assert not failed, failed
    assert [r.status_code for r in results] == [200] * 45, {r.status_code: r.text[:200] for r in results}
    assert all("latent" in {v["ring"] for v in r.json()["rings"]} for r in results)
    assert stream_parts and stream_parts[-1].choices[0].finish_reason in ("stop", "length", "content_filter")
    assert max(sched.batches) > 1  # concurrent checks shared forward passes


def test_a_full_queue_answers_503_with_retry_after(smollm2, tiny_guard, tmp_path):
    server = _serve(smollm2, tiny_guard, tmp_path, max_queue=2, batch_wait_ms=50, max_batch=2)
    try:
        results = _checks(server.url, 24)
    finally:
        _stop(server)
    statuses = [r.status_code for r in results if isinstance(r, httpx.Response)]
    assert len(statuses) == 24 and set(statuses) <= {200, 503} and statuses.count(200) >= 2, statuses
    busy = [r for r in results if r.status_code == 503]
    assert busy, "24 concurrent checks against a queue of 2 should overflow it"
    for r in busy:
        assert r.json()["error"]["code"] == "overloaded" and int(r.headers["Retry-After"]) >= 1


def test_a_100k_character_message_is_refused_before_any_forward_pass(local_service):
    sched = local_service.app.state.service.dispatch.scheduler
    before = list(sched.batches)
    client = openai_client(local_service)
    t0 = time.perf_counter()
    with pytest.raises(openai.BadRequestError) as err:
        client.chat.completions.create(
            model=local_service.backend.model_name, messages=[{"role": "user", "content": "lorem ipsum " * 8_400}]
        )
    elapsed = time.perf_counter() - t0
    body = err.value.body
    assert body["code"] == "context_length_exceeded" and "the limit is 4,096 tokens" in body["message"]
    assert int(body["message"].split(" tokens")[0].split()[-1].replace(",", "")) > 4096
    assert sched.batches == before  # refused before the model saw it
    assert elapsed < 5.0, elapsed  # the bound is 1 s on an idle machine; this one is shared
    r = httpx.post(
        f"{local_service.url}/v1/guard/check",
        json={"prompt": "x " * 60_000},
        headers={"Authorization": f"Bearer {KEYS['user']}"},
        timeout=30,
    )
    assert r.status_code == 400 and r.json()["error"]["code"] == "context_length_exceeded"


TOOL_CALL = {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Oslo"}'}}
TOOLS = [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}]
TURNS: dict[str, list[dict[str, Any]]] = {
    "tool_result_last": [
        {"role": "user", "content": "What is the weather in Oslo?"},
        {"role": "assistant", "content": None, "tool_calls": [TOOL_CALL]},
        {"role": "tool", "tool_call_id": "call_1", "content": "Sunny, 21 C"},
    ],
    "assistant_last": [
        {"role": "user", "content": "Write a poem about the sea."},
        {"role": "assistant", "content": "The sea is wide,"},
    ],
    "empty_string": [{"role": "user", "content": ""}],
    "null_content": [{"role": "user", "content": None}],
    "empty_parts": [{"role": "user", "content": []}],
    "text_parts": [
        {"role": "user", "content": [{"type": "text", "text": "Name "}, {"type": "text", "text": "a fruit."}]}
    ],
    "system_developer_name": [
        {"role": "system", "content": "You are terse."},
        {"role": "developer", "content": "Answer in English."},
        {"role": "user", "name": "alice", "content": "Say hello."},
    ],
    "empty_tool_result": [
        {"role": "user", "content": "Ping the server."},
        {"role": "assistant", "content": "", "tool_calls": [TOOL_CALL]},
        {"role": "tool", "tool_call_id": "call_1", "content": ""},
    ],
}


@pytest.mark.parametrize("shape", sorted(TURNS))
def test_every_openai_turn_shape_is_answered(local_service, shape):
    client = openai_client(local_service)
    kwargs: dict[str, Any] = {"tools": TOOLS} if "tool" in shape else {}
    r = client.chat.completions.create(
        model=local_service.backend.model_name, messages=TURNS[shape], max_tokens=8, **kwargs
    )
    assert r.choices[0].finish_reason in ("stop", "length", "content_filter", "tool_calls")
    assert r.model_extra["layerguard"]["verdict"]["decision"] in ("allow", "block", "escalate", "rewrite")


def test_numbers_out_of_range_are_400_and_max_tokens_is_clamped(local_service):
    client = openai_client(local_service)
    model = local_service.backend.model_name
    msgs = [{"role": "user", "content": "Say hi."}]
    for bad in ({"seed": 2**70}, {"seed": -(2**70)}, {"temperature": 5.0}, {"top_p": 0}, {"max_tokens": 0}):
        with pytest.raises(openai.BadRequestError):
            client.chat.completions.create(model=model, messages=msgs, **bad)
    for ok in ({"seed": 2**63 - 1}, {"seed": -1}, {"max_tokens": 10**12}):
        extra = {"max_tokens": 4} if "max_tokens" not in ok else {}
        r = client.chat.completions.create(model=model, messages=msgs, **ok, **extra)
        assert r.choices[0].finish_reason in ("stop", "length", "content_filter")
