"""Cells per second of the red-team runner: local executor vs Ray with 1 and 2 actors, side by side.

The same unguarded grid (attacks x samples, greedy, ``--max-new-tokens``) runs three times in
one process: with the local executor (this process, all its threads), then on a Ray instance
started here with 1 and with 2 model-replica actors (1 CPU each). Every run has a fresh store,
so each computes every cell; the rows are checked to be identical. Ray's own overhead per cell
is the 1-actor time less the local time with one torch thread, divided by the cells (the 1-actor
replica runs with one thread too). Replica start-up (a worker process, imports, model load) is
timed apart and not counted in the cell rates.

    python benchmarks/bench_ray.py [--model smollm2-135m] [--n 8] [--attacks direct,roleplay]

On a shared 2-core machine the figures are contended: read the ratios, not the absolute rates.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from layerguard.data.builtin import load_builtin
from layerguard.data.samples import spread
from layerguard.distributed.audit import RayExecutor
from layerguard.models import load_model
from layerguard.redteam.runner import RunConfig, Runner

TIMING = {"latency_ms", "guard_latency_ms"}


def _run(lm: Any, cfg: RunConfig, harmful: list[Any], executor: Any) -> tuple[float, list[dict[str, Any]]]:
    with tempfile.TemporaryDirectory() as d:
        runner = Runner(lm, None, None, Path(d), cfg, progress=False, executor=executor)
        t0 = time.perf_counter()
        rows = runner.run(harmful, [])
        return time.perf_counter() - t0, [{k: v for k, v in r.items() if k not in TIMING} for r in rows]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--n", type=int, default=8, help="Harmful samples.")
    ap.add_argument("--attacks", default="direct,roleplay")
    ap.add_argument("--max-new-tokens", type=int, default=16)
    ap.add_argument("--batch-size", type=int, default=4)
    args = ap.parse_args()
    import ray

    lm = load_model(args.model, progress=False)
    harmful = spread(load_builtin("harmful", "val"), args.n)
    cfg = RunConfig(args.attacks.split(","), args.max_new_tokens, args.batch_size, live_turns=False)
    cells = len(cfg.attacks) * len(harmful)
    threads = torch.get_num_threads()
    results: dict[str, Any] = {"model": lm.model_id, "cells": cells, "torch_threads_local": threads}

    t_local, rows_local = _run(lm, cfg, harmful, None)
    torch.set_num_threads(1)
    t_local1, rows_local1 = _run(lm, cfg, harmful, None)
    torch.set_num_threads(threads)
    ray.init(num_cpus=2, include_dashboard=False, logging_level="WARNING", log_to_driver=False)
    timings: dict[str, float] = {}
    for n in (1, 2):
        ex = RayExecutor(actors=n)
        t, rows = _run(lm, cfg, harmful, ex)
        assert rows == rows_local, f"{n} actor(s): rows differ from the local executor's"
        assert ex.pool is not None
        timings[f"ray_{n}"] = t - ex.pool.stats.startup_s
        timings[f"ray_{n}_replica_start"] = ex.pool.stats.startup_s
    ray.shutdown()
    assert rows_local1 == rows_local
    results.update(
        {
            "local_s": round(t_local, 2),
            "local_1thread_s": round(t_local1, 2),
            **{f"{k}_s": round(v, 2) for k, v in timings.items()},
            "cells_per_s": {
                "local": round(cells / t_local, 3),
                "local_1thread": round(cells / t_local1, 3),
                "ray_1_actor": round(cells / timings["ray_1"], 3),
                "ray_2_actors": round(cells / timings["ray_2"], 3),
            },
            "ratio_ray2_vs_ray1": round(timings["ray_1"] / timings["ray_2"], 3),
            "ratio_ray2_vs_local": round(t_local / timings["ray_2"], 3),
            "ray_overhead_per_cell_s": round((timings["ray_1"] - t_local1) / cells, 3),
        }
    )
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
