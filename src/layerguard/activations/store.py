"""Captured activations: an in-memory value and an on-disk, sharded format.

On disk a capture is a directory: ``meta.json`` plus ``shard-NNNNN.safetensors`` files,
each holding every hook point for a contiguous block of prompts. Large captures stream
shard by shard, so memory stays bounded by one shard.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from layerguard.errors import InvalidInputError

META = "meta.json"


@dataclass
class ActivationSet:
    """Residual-stream activations for N prompts.

    Attributes:
        data: hook name -> float32 tensor ``[n_prompts, n_positions, d_model]``.
        positions: the label of each position column (e.g. ``t_inst``, ``post_inst[2]``).
        token_index: ``[n_prompts, n_positions]`` token index of each column in its prompt.
        meta: provenance (model id, weights and template hashes, layerguard version).
    """

    data: dict[str, Any]
    positions: list[str]
    token_index: Any
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def names(self) -> list[str]:
        return list(self.data)

    def __len__(self) -> int:
        return int(self.token_index.shape[0])

    def __getitem__(self, name: str) -> Any:
        try:
            return self.data[name]
        except KeyError:
            raise InvalidInputError(
                f"no activations captured at {name!r}", hint=f"captured: {', '.join(self.data)}"
            ) from None

    def at(self, name: str, position: str) -> Any:
        """Activations ``[n_prompts, d_model]`` at one hook point and one position label."""
        if position not in self.positions:
            raise InvalidInputError(
                f"position {position!r} was not captured", hint=f"captured: {', '.join(self.positions)}"
            )
        return self[name][:, self.positions.index(position)]

    def save(self, directory: str | Path) -> Path:
        """Write as a single-shard capture directory."""
        writer = ShardWriter(Path(directory), self.positions, self.meta)
        writer.write(self.data, self.token_index)
        writer.close()
        return Path(directory)

    @classmethod
    def load(cls, directory: str | Path, names: list[str] | None = None) -> ActivationSet:
        """Read a capture directory (optionally only some hook points) into memory."""
        import torch

        reader = ShardReader(Path(directory))
        wanted = names or reader.names
        parts: dict[str, list[Any]] = {n: [] for n in wanted}
        index = []
        for shard in reader.iter_shards(wanted):
            for n in wanted:
                parts[n].append(shard[n])
            index.append(shard["__token_index__"])
        data = {n: torch.cat(parts[n]) for n in wanted}
        return cls(data, reader.positions, torch.cat(index), reader.meta)


class ShardWriter:
    """Writes a capture directory one shard at a time."""

    def __init__(self, directory: Path, positions: list[str], meta: dict[str, Any]) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        if (directory / META).exists() or any(directory.glob("shard-*.safetensors")):
            raise InvalidInputError(
                f"{directory} already holds a capture", hint="choose a new output directory or delete the old one"
            )
        self.directory = directory
        self.positions = positions
        self.meta = meta
        self.n_shards = 0
        self.n_prompts = 0
        self.names: list[str] = []

    def write(self, data: dict[str, Any], token_index: Any) -> None:
        from safetensors.torch import save_file

        self.names = list(data)
        tensors = {n: t.contiguous() for n, t in data.items()}
        tensors["__token_index__"] = token_index.contiguous()
        save_file(tensors, str(self.directory / f"shard-{self.n_shards:05d}.safetensors"))
        self.n_shards += 1
        self.n_prompts += int(token_index.shape[0])

    def close(self) -> None:
        # meta.json is written last: its presence marks a complete capture.
        meta = {
            **self.meta,
            "positions": self.positions,
            "names": self.names,
            "n_prompts": self.n_prompts,
            "n_shards": self.n_shards,
        }
        (self.directory / META).write_text(json.dumps(meta, indent=2))


class ShardReader:
    """Reads a capture directory shard by shard."""

    def __init__(self, directory: Path) -> None:
        meta_path = directory / META
        if not meta_path.is_file():
            raise InvalidInputError(
                f"{directory} is not a complete capture (no {META})",
                hint="point at a directory written by `layerguard capture` that finished",
            )
        self.directory = directory
        self.meta: dict[str, Any] = json.loads(meta_path.read_text())
        self.positions: list[str] = self.meta["positions"]
        self.names: list[str] = self.meta["names"]

    def iter_shards(self, names: list[str] | None = None) -> Iterator[dict[str, Any]]:
        from safetensors import safe_open

        wanted = names or self.names
        unknown = [n for n in wanted if n not in self.names]
        if unknown:
            raise InvalidInputError(f"no activations at {unknown[0]!r}", hint=f"captured: {', '.join(self.names)}")
        for i in range(int(self.meta["n_shards"])):
            with safe_open(str(self.directory / f"shard-{i:05d}.safetensors"), framework="pt") as fh:
                yield {n: fh.get_tensor(n) for n in [*wanted, "__token_index__"]}
