"""Bounded load test: 32 concurrent clients against the real server; zero 5xx; p50/p99 recorded.

The default run lasts about 8 s; the ``slow`` variant 30 s. Traffic goes to 127.0.0.1 only.
Results go to ``test-artifacts/load.json`` (beside ``pyproject.toml``).
"""

from __future__ import annotations

import json
import statistics
import threading
import time
from collections import Counter
from pathlib import Path

import httpx

from tests.service.helpers import KEYS

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
PROMPTS = ["Say hello", "Say hello", "Say hello", "something forbidden", "TOOL weather", "HALT now"]


def percentile(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, max(0, round(q * (len(s) - 1))))]


def run_load(url: str, seconds: float, clients: int = 32) -> dict:
    deadline = time.monotonic() + seconds
    latencies: list[float] = []
    statuses: Counter[int] = Counter()
    errors: Counter[str] = Counter()
    lock = threading.Lock()

    def client(i: int) -> None:
        headers = {"Authorization": f"Bearer {KEYS['load']}"}
        n = 0
        with httpx.Client(base_url=url, headers=headers, timeout=30) as c:
            while time.monotonic() < deadline:
                n += 1
                prompt = PROMPTS[(i + n) % len(PROMPTS)]
                body = {"model": "fake-model", "messages": [{"role": "user", "content": prompt}],
                        "stream": (i + n) % 4 == 0, "user": f"client-{i}"}  # fmt: skip
                if "TOOL" in prompt:
                    body["tools"] = [{"type": "function", "function": {"name": "get_weather"}}]
                t0 = time.perf_counter()
                try:
                    r = c.post("/v1/chat/completions", json=body)
                    _ = r.content
                    ok = r.status_code
                except httpx.HTTPError as exc:
                    with lock:
                        errors[type(exc).__name__] += 1
                    continue
                dt = (time.perf_counter() - t0) * 1000
                with lock:
                    latencies.append(dt)
                    statuses[ok] += 1

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join(seconds + 60)
    wall = time.monotonic() - t0
    return {
        "clients": clients,
        "seconds": round(wall, 2),
        "requests": len(latencies),
        "rps": round(len(latencies) / wall, 1),
        "p50_ms": round(percentile(latencies, 0.50), 1) if latencies else None,
        "p99_ms": round(percentile(latencies, 0.99), 1) if latencies else None,
        "mean_ms": round(statistics.fmean(latencies), 1) if latencies else None,
        "max_ms": round(max(latencies), 1) if latencies else None,
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
        "client_errors": dict(errors),
    }


def _check_and_record(service, seconds: float, name: str) -> None:
    before = len(service.store.audit_ids())
    result = run_load(service.url, seconds)
    result["audit_records_written"] = len(service.store.audit_ids()) - before
    result["sqlite_synchronous"] = "FULL"
    print(f"\nload ({name}): {json.dumps(result)}")
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / "load.json"
    existing = json.loads(path.read_text()) if path.exists() else {}
    existing[name] = result
    path.write_text(json.dumps(existing, indent=2) + "\n")
    assert result["requests"] > 0
    assert not result["client_errors"], result
    assert all(int(s) < 500 for s in result["statuses"]), result
    assert result["audit_records_written"] == result["requests"]  # every request audited


def test_load_32_clients_30s(service):
    _check_and_record(service, 30.0, "32_clients_30s")
