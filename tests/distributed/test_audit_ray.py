"""The audit on a real two-node Ray cluster (smollm2, tiny guard, tiny suite): same results as one process."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path
from typing import Any

import pytest

from layerguard.distributed.audit import RayExecutor
from layerguard.redteam.audit import run_audit
from layerguard.redteam.store import RunStore

# a Ray cluster and model replicas: about 7 minutes for the three files; see tests/distributed/conftest.py

SUITE: dict[str, Any] = {
    "n_samples": 3,
    "n_benign": 2,
    "attacks": ["direct", "roleplay", "base64"],
    "max_new_tokens": 8,
    "batch_size": 2,
    "seed": 3,
}
TIMING_KEYS = {"latency_ms", "guard_latency_ms", "timing", "duration_s", "command", "guard_cache"}


def _untimed(obj: Any) -> Any:
    """The summary or row without wall-clock figures (they differ between any two runs)."""
    if isinstance(obj, dict):
        return {k: _untimed(v) for k, v in obj.items() if k not in TIMING_KEYS}
    if isinstance(obj, list):
        return [_untimed(v) for v in obj]
    return obj


def _rows(out: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def local_run(tmp_path_factory, tiny_guard) -> Path:
    out = tmp_path_factory.mktemp("audit-local")
    run_audit("smollm2-135m", out, guard_path=tiny_guard, **SUITE)
    return out


def test_ray_audit_equals_local_apart_from_timings(ray_cluster, local_run, tiny_guard, tmp_path):
    out = tmp_path / "ray"
    messages: list[str] = []
    executor = RayExecutor(address=ray_cluster, actors=2, log=messages.append)
    run_audit("smollm2-135m", out, guard_path=tiny_guard, executor=executor, **SUITE)
    local = json.loads((local_run / "summary.json").read_text())
    remote = json.loads((out / "summary.json").read_text())
    assert _untimed(remote) == _untimed(local)
    assert _untimed(_rows(out)) == _untimed(_rows(local_run))
    assert len(_rows(out)) > 0
    # both nodes of the cluster held a replica, and the driver said so
    assert executor.pool is not None
    nodes = {a["node"] for a in executor.pool.stats.per_actor}
    assert len(executor.pool.stats.per_actor) == 2 and sum(a["tasks"] for a in executor.pool.stats.per_actor) > 0
    assert any("2 node(s)" in m for m in messages), messages
    assert nodes <= {"127.0.0.2", "127.0.0.3"}


def test_a_killed_worker_is_replaced_and_every_cell_is_stored_once(ray_cluster, local_run, tiny_guard, tmp_path):
    """SIGKILL one actor's process after the first chunk; its chunk is re-queued on a new replica."""
    from layerguard.guard.build import load_guard
    from layerguard.models import load_model
    from layerguard.redteam.runner import RunConfig, Runner

    lm = load_model("smollm2-135m")
    guard = load_guard(tiny_guard, lm)
    local_rows = _rows(local_run)
    summary = json.loads((local_run / "summary.json").read_text())
    cfg = RunConfig(**summary["config"])
    cfg.live_turns = False
    executor = RayExecutor(address=ray_cluster, actors=2, log=lambda m: None)
    runner = Runner(lm, guard, summary["guard"], tmp_path, cfg, progress=False, executor=executor)
    harmful, benign = _samples(local_rows)
    killed: list[int] = []

    def kill_one(batches: int) -> None:
        if batches == 1:
            assert executor.pool is not None
            pid = executor.pool.pids()[0]
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)

    rows = runner.run(harmful, benign, on_batch=kill_one)
    assert killed and executor.pool is not None
    assert executor.pool.stats.replaced == 1
    assert killed[0] not in executor.pool.pids()
    ids = [RunStore.cell_id(r["sample_id"], r["attack"], r["guarded"]) for r in rows]
    assert len(ids) == len(set(ids))
    expected = [r for r in local_rows if r["attack"] != "escalation_live"]
    assert _untimed(rows) == _untimed(expected)


def test_a_stopped_driver_resumes_into_a_sqlalchemy_store(ray_cluster, local_run, tiny_guard, tmp_path):
    """The driver stops after two chunks; a new driver finishes only the missing cells, each once."""
    from layerguard.guard.build import load_guard
    from layerguard.models import load_model
    from layerguard.redteam.runner import RunConfig, Runner

    lm = load_model("smollm2-135m")
    guard = load_guard(tiny_guard, lm)
    local_rows = _rows(local_run)
    summary = json.loads((local_run / "summary.json").read_text())
    cfg = RunConfig(**summary["config"])
    cfg.live_turns = False
    url = f"sqlite:///{tmp_path / 'shared.sqlite'}"
    harmful, benign = _samples(local_rows)

    first = Runner(lm, guard, summary["guard"], tmp_path, cfg, progress=False, executor=RayExecutor(), store_url=url)
    partial = first.run(harmful, benign, stop_after_batches=2)
    assert 0 < len(partial) < len(local_rows)
    computed: list[int] = []
    again = RayExecutor(address=ray_cluster, actors=1)
    second = Runner(lm, guard, summary["guard"], tmp_path, cfg, progress=False, executor=again, store_url=url)
    rows = second.run(harmful, benign)
    assert again.pool is not None
    computed.append(sum(a["items"] for a in again.pool.stats.per_actor))
    expected = [r for r in local_rows if r["attack"] != "escalation_live"]
    assert _untimed(rows) == _untimed(expected)
    # the second driver computed only the cells the first had not committed (2 rows per cell: guarded and not)
    assert computed[0] * 2 == len(expected) - len(partial)


def _samples(rows: list[dict[str, Any]]) -> tuple[list[Any], list[Any]]:
    """The audit's samples, in the order the audit chose them (its spread of the built-in sets)."""
    from layerguard.data.loaders import load_dataset
    from layerguard.data.samples import spread
    from layerguard.defaults import AUDIT

    harmful = spread(load_dataset(AUDIT.dataset), SUITE["n_samples"])
    benign = [
        s.model_copy(update={"label": "borderline"}) for s in spread(load_dataset(AUDIT.benign), SUITE["n_benign"])
    ]
    ids = {r["sample_id"] for r in rows}
    assert {s.id for s in harmful + benign} <= ids
    return harmful, benign
