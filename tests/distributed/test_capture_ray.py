"""Captures and directions from Ray actors: the same numbers as the local path for the same inputs."""

from __future__ import annotations

import json

import pytest

from layerguard.activations.capture import capture_activations
from layerguard.activations.store import ActivationSet, ShardReader
from layerguard.data.builtin import load_builtin
from layerguard.data.samples import spread
from layerguard.directions.extract import extract_directions
from layerguard.distributed.capture import capture_activations_ray, extract_directions_ray

# a Ray cluster and model replicas: about 7 minutes for the three files; see tests/distributed/conftest.py


@pytest.fixture(scope="module")
def prompts() -> tuple[list, list]:
    return spread(load_builtin("harmful", "train"), 10), spread(load_builtin("harmless", "train"), 10)


def test_ray_directions_and_a_threshold_equal_the_local_ones(ray_cluster, smollm2, prompts):
    """Directions fitted on the driver from actor captures equal the local ones to float32 rounding; so does
    a threshold calibrated on projections onto them (what a guard build computes from the same states).

    Not bit for bit: on 2026-12-03 the harmfulness vectors differed in the last bits (torch.equal
    failed; refusal@post_inst[2] by up to 2.4e-5 of its largest entry). The next test finds the capture
    byte-identical when both sides cut the prompts into the same blocks; here the local extraction blocks
    them its own way (not yet checked whether that, through padding, is the whole cause)."""

    from layerguard.guard.calibration import threshold_for_fpr

    harmful, harmless = prompts
    local = extract_directions(smollm2, harmful, harmless, batch_size=4)
    logs: list[str] = []
    remote = extract_directions_ray(smollm2, harmful, harmless, batch_size=4, shard_size=6, actors=2, log=logs.append)
    assert local.keys() == remote.keys() and "harmfulness" in local
    for name in local:
        a, b = local[name].vectors, remote[name].vectors
        rel = float((a - b).abs().max() / a.abs().max().clamp(min=1e-12))
        assert rel <= 1e-4, (name, rel)  # measured up to 2.4e-5 (refusal@post_inst[2]): float32 rounding
        assert local[name].meta["data_sha256"] == remote[name].meta["data_sha256"]
    assert any("2 node(s)" in m for m in logs)
    # 4 blocks of at most 6 prompts over two actors: both replicas worked
    assert sum("task(s)" in m for m in logs) >= 1

    acts = capture_activations(smollm2, [s.conversation() for s in harmless], positions=["t_inst"], layers=[10])
    assert isinstance(acts, ActivationSet)
    x = acts.at("blocks.10.resid_pre", "t_inst")
    scores_local = (x @ local["harmfulness"].unit(10)).tolist()
    scores_remote = (x @ remote["harmfulness"].unit(10)).tolist()
    t_local, t_remote = threshold_for_fpr(scores_local, 0.1), threshold_for_fpr(scores_remote, 0.1)
    assert abs(t_local - t_remote) <= 1e-4 * max(1.0, abs(t_local)), (t_local, t_remote)


def test_ray_capture_writes_the_same_shards_as_the_local_capture(ray_cluster, smollm2, prompts, tmp_path):
    import torch

    convs = [s.conversation() for s in prompts[0] + prompts[1]]
    kw = {"layers": [3, 20], "positions": ["t_inst", "last"], "batch_size": 3, "shard_size": 7}
    local_dir = capture_activations(smollm2, convs, out_dir=tmp_path / "local", **kw)
    ray_dir = capture_activations_ray("smollm2-135m", convs, out_dir=tmp_path / "ray", actors=2, **kw)
    local_meta = json.loads((tmp_path / "local" / "meta.json").read_text())
    ray_meta = json.loads((tmp_path / "ray" / "meta.json").read_text())
    assert ray_meta == local_meta and ray_meta["n_shards"] == 3
    for a, b in zip(ShardReader(local_dir).iter_shards(), ShardReader(ray_dir).iter_shards(), strict=True):
        assert a.keys() == b.keys()
        assert all(torch.equal(a[k], b[k]) for k in a)
    gathered = capture_activations_ray("smollm2-135m", convs, actors=2, **kw)
    in_memory = capture_activations(smollm2, convs, **kw)
    assert isinstance(gathered, ActivationSet) and isinstance(in_memory, ActivationSet)
    assert gathered.positions == in_memory.positions and gathered.meta == in_memory.meta
    assert all(torch.equal(gathered[n], in_memory[n]) for n in in_memory.names)
    assert torch.equal(gathered.token_index, in_memory.token_index)
