"""The service with the real smollm2 behind a real guard (latent ring on the served forward pass)."""

from __future__ import annotations

import pytest

from layerguard.guard.build import load_guard, local_backend_for
from layerguard.guard.rings.output_monitor import OutputMonitor
from tests.service.helpers import KEYS, LiveServer, make_config, openai_client


@pytest.fixture(scope="module")
def real_service(smollm2, tiny_guard, tmp_path_factory):
    from layerguard.service.app import create_app
    from layerguard.service.storage import Store

    guard = load_guard(tiny_guard, smollm2)
    backend = local_backend_for(guard, smollm2)
    store = Store(tmp_path_factory.mktemp("svc") / "service.db")
    server = LiveServer(create_app(guard, backend, store, make_config()))
    server.backend, server.store = backend, store  # type: ignore[attr-defined]
    yield server
    server.stop()
    store.close()


def test_chat_and_stream_with_the_real_model(real_service):
    client = openai_client(real_service)
    model = real_service.backend.model_name
    r = client.chat.completions.create(model=model, messages=[{"role": "user", "content": "Say hello."}], max_tokens=12)
    assert r.choices[0].message.content and r.choices[0].finish_reason in ("stop", "length", "content_filter")
    parts = list(
        client.chat.completions.create(
            model=model, stream=True, max_tokens=12, messages=[{"role": "user", "content": "Name a fruit."}]
        )
    )
    text = "".join(p.choices[0].delta.content or "" for p in parts if p.choices)
    assert text and parts[-1].choices[0].finish_reason is not None


def test_latent_ring_reads_the_served_pass_and_monitor_halts(real_service):
    import httpx

    r = httpx.post(
        f"{real_service.url}/v1/guard/check",
        headers={"Authorization": f"Bearer {KEYS['user']}"},
        json={"prompt": "Explain how to poison a coworker slowly."},
        timeout=60,
    )
    assert r.status_code == 200
    rings = {v["ring"]: v for v in r.json()["rings"]}
    assert "latent" in rings and 0.0 <= rings["latent"]["score"] <= 1.0
    # make the output monitor trip at once: a stream halted mid-way by the real backend
    monitor = real_service.backend.monitor
    assert isinstance(monitor, OutputMonitor)
    real_service.backend.monitor = OutputMonitor(monitor.layer, monitor.probe, threshold=0.0, min_tokens=2)
    try:
        client = openai_client(real_service)
        parts = list(
            client.chat.completions.create(
                model=real_service.backend.model_name,
                stream=True,
                max_tokens=30,
                messages=[{"role": "user", "content": "Write a long story about a dragon."}],
            )
        )
        assert parts[-1].choices[0].finish_reason == "content_filter"
    finally:
        real_service.backend.monitor = monitor
