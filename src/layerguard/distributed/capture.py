"""Activation captures on a pool of Ray actors, fitted centrally: the same numbers as one process.

The prompts are cut into the blocks that :func:`~layerguard.activations.capture.capture_activations`
itself uses (``shard_size`` prompts each); each block is captured on an actor by that same
function, so every forward pass sees the same batch as it would locally. The blocks are
gathered to the driver in order (an :class:`ActivationSet`) or written by the actors as the
``shard-NNNNN.safetensors`` files of a capture directory on a shared path, with ``meta.json``
written last by the driver, as :class:`~layerguard.activations.store.ShardWriter` does.
Directions are then fitted on the driver with :func:`~layerguard.directions.extract.directions_from_acts`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from layerguard.activations.capture import DEFAULT_POSITIONS, capture_activations
from layerguard.activations.store import META, ActivationSet
from layerguard.data.heldout import assert_not_held_out
from layerguard.directions.direction import Direction
from layerguard.directions.extract import PromptLike, check_contrast, data_hash, directions_from_acts
from layerguard.distributed.cluster import apply_env, connect, forwarded_env, require_ray
from layerguard.distributed.pool import ReplacingPool, actor_info
from layerguard.errors import InvalidInputError
from layerguard.models.handle import LoadedModel


class CaptureWorker:
    """Inside an actor: one model replica that captures blocks of prompts."""

    def __init__(self, model: str, env: dict[str, str]) -> None:
        apply_env(env)
        from layerguard.models import load_model

        self.lm = load_model(model, progress=False)

    def ready(self) -> dict[str, Any]:
        """Node and process of this replica."""
        return actor_info()

    def capture(self, payload: dict[str, Any]) -> dict[str, Any]:
        """Capture one block; return its tensors, or write them as shard ``block`` of ``out_dir``."""
        acts = capture_activations(
            self.lm, payload["conversations"], shard_size=len(payload["conversations"]), progress=False, **payload["kw"]
        )
        assert isinstance(acts, ActivationSet)
        out: dict[str, Any] = {"positions": acts.positions, "meta": acts.meta, "names": acts.names, "n": len(acts)}
        if payload.get("out_dir"):
            from safetensors.torch import save_file

            tensors = {n: t.contiguous() for n, t in acts.data.items()}
            tensors["__token_index__"] = acts.token_index.contiguous()
            save_file(tensors, str(Path(payload["out_dir"]) / f"shard-{payload['block']:05d}.safetensors"))
        else:
            out["data"] = {n: t.numpy() for n, t in acts.data.items()}
            out["index"] = acts.token_index.numpy()
        return out


def _gather(blocks: list[dict[str, Any]]) -> ActivationSet:
    import torch

    first = blocks[0]
    for b in blocks[1:]:
        if b["positions"] != first["positions"]:
            raise InvalidInputError("position labels differ between prompts", hint="use single-token positions")
    data = {n: torch.cat([torch.from_numpy(b["data"][n]) for b in blocks]) for n in first["names"]}
    index = torch.cat([torch.from_numpy(b["index"]) for b in blocks])
    return ActivationSet(data, list(first["positions"]), index, {**first["meta"], "positions": first["positions"]})


def _capture_groups(
    model: str,
    groups: dict[str, Sequence[Any]],
    kw: dict[str, Any],
    *,
    shard_size: int,
    out_dirs: dict[str, Path] | None,
    address: str | None,
    actors: int | None,
    cpus_per_actor: float,
    log: Callable[[str], None],
) -> dict[str, list[dict[str, Any]]]:
    """Every group's blocks captured on one pool; the results in block order per group."""
    ray = require_ray()
    tasks: list[tuple[str, Any]] = []
    for name, convs in groups.items():
        for b, start in enumerate(range(0, len(convs), shard_size)):
            out_dir = str(out_dirs[name]) if out_dirs else None
            payload = {
                "conversations": list(convs[start : start + shard_size]),
                "kw": kw,
                "block": b,
                "out_dir": out_dir,
            }
            tasks.append((f"{name}:{b:05d}", payload))
    cluster = connect(address, log=log)
    try:
        size = min(actors or cluster.max_actors(cpus_per_actor), len(tasks))
        opts = {**cluster.actor_resources(cpus_per_actor), "max_restarts": 0}
        worker = ray.remote(CaptureWorker)
        env = forwarded_env()
        pool = ReplacingPool(
            lambda: worker.options(**opts).remote(model, env),
            size,
            "capture",
            log=log,
            items=lambda p: len(p["conversations"]),
        )
        results = dict(pool.map(tasks))
    finally:
        cluster.close()
    return {name: [results[k] for k, _ in tasks if k.startswith(f"{name}:")] for name in groups}


def capture_activations_ray(
    model: str,
    conversations: Sequence[Any],
    *,
    layers: Sequence[int] | None = None,
    points: Sequence[str] = ("resid_pre",),
    positions: Sequence[str | int] = DEFAULT_POSITIONS,
    system: str | None = None,
    batch_size: int = 8,
    max_tokens: int = 8192,
    prefix_cache: bool = True,
    out_dir: str | Path | None = None,
    shard_size: int = 512,
    address: str | None = None,
    actors: int | None = None,
    cpus_per_actor: float = 1.0,
    log: Callable[[str], None] = lambda m: None,
) -> ActivationSet | Path:
    """:func:`~layerguard.activations.capture.capture_activations` on Ray actors (same arguments, same result).

    Args:
        model: The model spec every actor loads.
        conversations: Prompts or message lists.
        layers: See ``capture_activations``; so are ``points`` to ``shard_size``.
        points: Hook points.
        positions: Position specs.
        system: System prompt.
        batch_size: Prompts per forward pass.
        max_tokens: Padded tokens per forward pass.
        prefix_cache: Reuse the shared template opening.
        out_dir: A capture directory on a path every node sees (the actors write its shards).
        shard_size: Prompts per block (per task, and per shard on disk).
        address: A Ray cluster (None: Ray on this machine).
        actors: Replicas (default: as many as fit).
        cpus_per_actor: CPUs each replica declares when there are no GPUs.
        log: Receives cluster and per-actor progress.
    """
    if len(conversations) == 0:
        raise InvalidInputError("no prompts to capture", hint="pass at least one prompt")
    if batch_size < 1 or shard_size < 1:
        raise InvalidInputError("batch_size and shard_size must be >= 1")
    kw = {
        "layers": list(layers) if layers is not None else None,
        "points": list(points),
        "positions": list(positions),
        "system": system,
        "batch_size": batch_size,
        "max_tokens": max_tokens,
        "prefix_cache": prefix_cache,
    }
    out = Path(out_dir) if out_dir is not None else None
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        if (out / META).exists() or any(out.glob("shard-*.safetensors")):
            raise InvalidInputError(f"{out} already holds a capture", hint="choose a new output directory")
    blocks = _capture_groups(
        model,
        {"all": conversations},
        kw,
        shard_size=shard_size,
        out_dirs={"all": out} if out is not None else None,
        address=address,
        actors=actors,
        cpus_per_actor=cpus_per_actor,
        log=log,
    )["all"]
    if out is None:
        return _gather(blocks)
    first = blocks[0]
    if any(b["positions"] != first["positions"] for b in blocks):
        raise InvalidInputError("position labels differ between prompts", hint="use single-token positions")
    meta = {
        **first["meta"],
        "positions": first["positions"],
        "names": first["names"],
        "n_prompts": sum(b["n"] for b in blocks),
        "n_shards": len(blocks),
    }
    (out / META).write_text(json.dumps(meta, indent=2))  # last: marks the capture complete
    return out


def extract_directions_ray(
    lm: LoadedModel,
    harmful: Sequence[PromptLike],
    harmless: Sequence[PromptLike],
    *,
    batch_size: int = 8,
    shard_size: int = 512,
    address: str | None = None,
    actors: int | None = None,
    cpus_per_actor: float = 1.0,
    log: Callable[[str], None] = lambda m: None,
) -> dict[str, Direction]:
    """:func:`~layerguard.directions.extract.extract_directions` with the captures on Ray actors.

    ``lm`` is the driver's copy of the model (for its hashes and sizes); the actors load ``lm.name``.

    Raises:
        InvalidInputError: an empty or one-sided contrast set, or held-out evaluation prompts.
    """
    assert_not_held_out([*harmful, *harmless], "extracting directions")
    check_contrast(harmful, harmless, ("harmful", "harmless"))
    kw = {"positions": ["t_inst", "post_inst"], "batch_size": batch_size}
    conv = [x.conversation() if not isinstance(x, str) else x for x in [*harmful, *harmless]]
    blocks = _capture_groups(
        lm.name,
        {"pos": conv[: len(harmful)], "neg": conv[len(harmful) :]},
        kw,
        shard_size=shard_size,
        out_dirs=None,
        address=address,
        actors=actors,
        cpus_per_actor=cpus_per_actor,
        log=log,
    )
    pos, neg = _gather(blocks["pos"]), _gather(blocks["neg"])
    return directions_from_acts(lm, pos, neg, meta={"data_sha256": data_hash(harmful, harmless)})
