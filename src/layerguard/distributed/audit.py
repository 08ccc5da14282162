"""The red-team runner's cells on a pool of Ray actors, each holding one model replica and the guard.

:class:`RayExecutor` is a :class:`~layerguard.redteam.executors.CellExecutor`: the runner cuts
the pending cells into chunks exactly as it does locally (one attack, ``batch_size`` samples),
and each chunk runs on an actor through the same :meth:`Runner.compute` as in one process, so
the rows are the same (greedy decoding; the same batches). Chunks are keyed by a content hash
(the run's identity, each cell's attack and whole sample): a chunk that an actor finished twice
is yielded once, and the store keeps each cell once. The driver commits every chunk as it
arrives, so a run resumes after a worker or driver failure with only the missing cells.

Every actor needs the model (by the name or path the driver used), the guard file and, for the
white-box attacks, the direction file at the same paths: a shared file system, or the same
embedded model installed on every node.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from layerguard.distributed.cluster import Cluster, apply_env, check_reachable, connect, forwarded_env, require_ray
from layerguard.distributed.pool import ReplacingPool, actor_info
from layerguard.errors import InvalidInputError
from layerguard.redteam.executors import Chunk, chunk_key

if TYPE_CHECKING:
    from layerguard.redteam.runner import Runner


class CellWorker:
    """Inside an actor: one model replica, the guard and a :class:`Runner` that computes chunks.

    Args:
        spec: ``model``, ``guard_path``, ``guard_id`` and ``config`` (a :class:`RunConfig` as a dict).
        env: The driver's settings (:func:`forwarded_env`).
    """

    def __init__(self, spec: dict[str, Any], env: dict[str, str]) -> None:
        apply_env(env)
        from layerguard.guard.build import load_guard
        from layerguard.models import load_model
        from layerguard.redteam.runner import RunConfig, Runner

        lm = load_model(spec["model"], progress=False)
        guard = load_guard(Path(spec["guard_path"]), lm) if spec.get("guard_path") else None
        out = Path(tempfile.mkdtemp(prefix="layerguard-actor-"))  # the runner's store is the driver's
        self.runner = Runner(lm, guard, spec["guard_id"], out, RunConfig(**spec["config"]), progress=False)

    def ready(self) -> dict[str, Any]:
        """Node and process of this replica (answered once the model is loaded)."""
        return actor_info()

    def compute(self, payload: list[tuple[str, dict[str, Any]]]) -> list[dict[str, Any]]:
        """The rows of one chunk, computed as the local runner computes them."""
        from layerguard.data.samples import Sample

        return self.runner.compute([(a, Sample.model_validate(s)) for a, s in payload])


class RayExecutor:
    """Shards a runner's chunks over Ray actors (one model replica + guard each).

    Args:
        model: The model spec the actors load (default: the name, file or directory the runner's
            model was loaded from).
        guard_path: The guard file (default: the file named by the runner's ``guard_id``,
            ``<path>@<sha256 prefix>`` as :func:`~layerguard.redteam.audit.run_audit` writes it).
        address: A Ray cluster's address (None: start Ray on this machine).
        actors: Replicas (default: as many as fit: one per GPU, else one per ``cpus_per_actor`` CPUs).
        cpus_per_actor: CPUs each replica declares when the cluster has no GPUs.
        log: Receives cluster resources, per-actor progress and replacements.
    """

    def __init__(
        self,
        model: str | None = None,
        guard_path: str | Path | None = None,
        *,
        address: str | None = None,
        actors: int | None = None,
        cpus_per_actor: float = 1.0,
        log: Callable[[str], None] = lambda m: None,
    ) -> None:
        require_ray()  # a missing package or a dead address fails before any model is loaded
        if address:
            check_reachable(address)
        if actors is not None and actors < 1:
            raise InvalidInputError(f"--ray-actors must be at least 1, got {actors}")
        self.model, self.guard_path = model, str(guard_path) if guard_path is not None else None
        self.address, self.actors, self.cpus_per_actor, self.log = address, actors, cpus_per_actor, log
        self.cluster: Cluster | None = None
        self.pool: ReplacingPool | None = None

    def run(self, runner: Runner, chunks: Sequence[Chunk]) -> Iterator[tuple[Chunk, list[dict[str, Any]]]]:
        """Yield ``(chunk, rows)`` for every chunk, as the actors finish them."""
        if not chunks:
            return
        ray = require_ray()
        spec = {
            "model": self.model or runner.lm.name,
            "guard_path": self._guard_file(runner),
            "guard_id": runner.guard_id,
            "config": asdict(runner.cfg),
        }
        digest = hashlib.sha256(
            json.dumps({"model": runner.lm.model_id, **spec}, sort_keys=True, default=str).encode()
        ).hexdigest()
        by_key = {chunk_key(digest, c): c for c in chunks}
        self.cluster = cluster = connect(self.address, log=self.log)
        size = min(self.actors or cluster.max_actors(self.cpus_per_actor), len(by_key))
        opts = {**cluster.actor_resources(self.cpus_per_actor), "max_restarts": 0}
        self.log(f"{len(by_key)} chunks ({sum(map(len, chunks))} cells) on {size} actor(s), each {opts}")
        worker = ray.remote(CellWorker)
        env = forwarded_env()
        self.pool = ReplacingPool(
            lambda: worker.options(**opts).remote(spec, env), size, "compute", log=self.log, items=len
        )
        tasks = [(k, [(a, s.model_dump(mode="json")) for a, s in c]) for k, c in by_key.items()]
        try:
            for key, rows in self.pool.map(tasks):
                yield by_key[key], rows
        finally:
            cluster.close()

    def _guard_file(self, runner: Runner) -> str | None:
        """The guard file the actors load: the one given, else the one the runner's guard id names."""
        if runner.guarded is None or self.guard_path is not None:
            return self.guard_path
        path, _, sha = (runner.guard_id or "").rpartition("@")
        file = Path(path)
        if path and file.is_file() and hashlib.sha256(file.read_bytes()).hexdigest().startswith(sha):
            return str(file.resolve())
        raise InvalidInputError(
            "the ray executor ships the guard to its actors as a file, and none was named",
            hint="pass the guard.yaml (RayExecutor(guard_path=...) or --guard FILE)",
        )
