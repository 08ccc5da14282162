"""Where the runner's cells are computed: in this process (the default) or elsewhere.

The :class:`~layerguard.redteam.runner.Runner` cuts the pending cells into chunks (one attack,
at most ``batch_size`` samples each) and hands them to an executor, which yields every chunk
with its finished rows, in any order; the runner commits each as it arrives. The run store
keys a row by (sample, attack, guarded), so a chunk computed twice (a worker that died after
finishing, a resumed driver) is stored once.

:class:`LocalExecutor` computes the chunks in order with the runner's own model;
:class:`layerguard.distributed.audit.RayExecutor` shards them over a pool of Ray actors.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from layerguard.data.samples import Sample

if TYPE_CHECKING:
    from layerguard.redteam.runner import Runner

Chunk = list[tuple[str, Sample]]  # (attack, sample) pairs of one attack


class CellExecutor(Protocol):
    """Computes chunks of cells for a runner."""

    def run(self, runner: Runner, chunks: Sequence[Chunk]) -> Iterator[tuple[Chunk, list[dict[str, Any]]]]:
        """Yield ``(chunk, rows)`` for every chunk, in any order."""
        ...


class LocalExecutor:
    """Computes every chunk in this process, in order, with the runner's model and guard."""

    def run(self, runner: Runner, chunks: Sequence[Chunk]) -> Iterator[tuple[Chunk, list[dict[str, Any]]]]:
        """Yield ``(chunk, rows)`` for every chunk, in order."""
        for chunk in chunks:
            yield chunk, runner.compute(chunk)


def chunk_key(identity_digest: str, chunk: Chunk) -> str:
    """A content hash of a chunk: the run's identity and each cell's attack and whole sample."""
    h = hashlib.sha256(identity_digest.encode())
    for attack, s in chunk:
        h.update(json.dumps([attack, s.model_dump(mode="json")], sort_keys=True, ensure_ascii=False).encode())
    return h.hexdigest()
