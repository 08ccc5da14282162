"""The Direction value: one vector per layer, with the identity of what it was learnt on.

Directions are values: arithmetic returns new directions and never mutates. On disk a
direction is ``NAME.safetensors`` (the vectors) beside ``NAME.json`` (metadata). Loading
onto a model checks the weights hash and chat-template hash and refuses a mismatch.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from layerguard.errors import InvalidInputError
from layerguard.version import __version__


class DirectionMismatchError(InvalidInputError):
    """A direction used with a model (or another direction) it was not made for."""


@dataclass(frozen=True)
class Direction:
    """Per-layer vectors in the residual stream.

    Attributes:
        vectors: float32 tensor ``[n_layers, d_model]`` (unnormalized difference in means;
            use :meth:`unit` for a unit vector).
        role: ``harmfulness``, ``refusal`` or a custom name.
        position: The token position it was read at (``t_inst``, ``post_inst[-1]``, ...).
        model_id: ``name@sha12`` of the model.
        weights_sha256: Full hash of the model weights.
        template_sha256: Hash of the chat template used to render the prompts.
        layer: The selected layer, when selection picked one.
        meta: Data hash, command line, seed, scores: anything worth keeping.
    """

    vectors: Any
    role: str
    position: str
    model_id: str
    weights_sha256: str
    template_sha256: str
    layer: int | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def n_layers(self) -> int:
        return int(self.vectors.shape[0])

    @property
    def d_model(self) -> int:
        return int(self.vectors.shape[1])

    def at(self, layer: int | None = None) -> Any:
        """The vector ``[d_model]`` at a layer (default: the selected layer)."""
        layer = self._layer(layer)
        return self.vectors[layer]

    def unit(self, layer: int | None = None) -> Any:
        """The unit vector at a layer (default: the selected layer)."""
        v = self.at(layer)
        return v / v.norm().clamp(min=1e-12)

    def _layer(self, layer: int | None) -> int:
        if layer is None:
            if self.layer is None:
                raise InvalidInputError(
                    f"direction {self.role!r} has no selected layer",
                    hint="pass a layer, or run `layerguard lab select`",
                )
            layer = self.layer
        if not -self.n_layers <= layer < self.n_layers:
            raise InvalidInputError(
                f"layer {layer} is out of range for a direction over {self.n_layers} layers",
                hint=f"use 0..{self.n_layers - 1}",
            )
        return layer % self.n_layers

    def with_layer(self, layer: int) -> Direction:
        """A copy with ``layer`` selected."""
        return replace(self, layer=self._layer(layer))

    def cosine(self, other: Direction) -> Any:
        """Cosine similarity per layer ``[n_layers]``."""
        import torch

        self._check_compatible(other)
        return torch.nn.functional.cosine_similarity(self.vectors, other.vectors, dim=-1)

    def _check_compatible(self, other: Direction) -> None:
        if self.weights_sha256 != other.weights_sha256 or self.vectors.shape != other.vectors.shape:
            raise DirectionMismatchError(
                f"directions from different models: {self.model_id} vs {other.model_id}",
                hint="combine only directions extracted from the same model",
            )

    def _combine(self, other: Direction, vectors: Any, op: str) -> Direction:
        return replace(
            self,
            vectors=vectors,
            role=f"({self.role} {op} {other.role})",
            meta={"derived_from": [self.role, other.role], "op": op},
        )

    def __add__(self, other: Direction) -> Direction:
        self._check_compatible(other)
        return self._combine(other, self.vectors + other.vectors, "+")

    def __sub__(self, other: Direction) -> Direction:
        self._check_compatible(other)
        return self._combine(other, self.vectors - other.vectors, "-")

    def __mul__(self, scalar: float) -> Direction:
        return replace(self, vectors=self.vectors * float(scalar), meta={**self.meta, "scaled_by": float(scalar)})

    __rmul__ = __mul__

    def __neg__(self) -> Direction:
        return self * -1.0

    def save(self, path: str | Path) -> Path:
        """Write ``path.safetensors`` and ``path.json``; returns the safetensors path."""
        from safetensors.torch import save_file

        base = _base(path)
        base.parent.mkdir(parents=True, exist_ok=True)
        save_file({"vectors": self.vectors.contiguous().float()}, str(base.with_suffix(".safetensors")))
        meta = {
            "role": self.role,
            "position": self.position,
            "model_id": self.model_id,
            "weights_sha256": self.weights_sha256,
            "template_sha256": self.template_sha256,
            "layer": self.layer,
            "n_layers": self.n_layers,
            "d_model": self.d_model,
            "layerguard_version": __version__,
            "command": self.meta.get("command") or " ".join(sys.argv),
            "meta": self.meta,
        }
        base.with_suffix(".json").write_text(json.dumps(meta, indent=2, default=str))
        return base.with_suffix(".safetensors")

    @classmethod
    def load(cls, path: str | Path, model: Any | None = None) -> Direction:
        """Read a direction; with ``model`` (a LoadedModel), refuse one made for another model.

        Raises:
            InvalidInputError: missing or malformed files.
            DirectionMismatchError: the direction was extracted from other weights or template.
        """
        from safetensors.torch import load_file

        base = _base(path)
        st, js = base.with_suffix(".safetensors"), base.with_suffix(".json")
        for f in (st, js):
            if not f.is_file():
                raise InvalidInputError(
                    f"direction file {f} does not exist", hint="pass the path written by `lab extract`"
                )
        try:
            meta = json.loads(js.read_text())
            vectors = load_file(str(st))["vectors"]
        except (ValueError, KeyError, OSError) as exc:
            raise InvalidInputError(f"direction {base} is unreadable: {exc}") from exc
        d = cls(
            vectors=vectors,
            role=meta["role"],
            position=meta["position"],
            model_id=meta["model_id"],
            weights_sha256=meta["weights_sha256"],
            template_sha256=meta["template_sha256"],
            layer=meta.get("layer"),
            meta={**meta.get("meta", {}), "command": meta.get("command")},
        )
        if model is not None:
            d.check_model(model)
        return d

    def check_model(self, model: Any) -> None:
        """Raise DirectionMismatchError unless ``model`` (a LoadedModel) is the one it came from."""
        if model.weights_sha256 != self.weights_sha256:
            raise DirectionMismatchError(
                f"direction {self.role!r} was extracted from {self.model_id}, not {model.model_id}",
                hint="extract a direction on this model: layerguard lab extract --model ...",
            )
        if model.template_hash != self.template_sha256:
            raise DirectionMismatchError(
                f"direction {self.role!r} was extracted with another chat template than {model.model_id}'s",
                hint="re-extract with the template you serve the model with",
            )
        if model.n_layers != self.n_layers or model.d_model != self.d_model:
            raise DirectionMismatchError(f"direction shape {tuple(self.vectors.shape)} does not fit {model.model_id}")


def _base(path: str | Path) -> Path:
    p = Path(path)
    return p.with_suffix("") if p.suffix in (".safetensors", ".json") else p
