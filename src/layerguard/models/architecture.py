"""Finding the decoder blocks of a causal LM without per-family tables."""

from __future__ import annotations

from typing import Any

from layerguard.errors import InvalidInputError

# Attribute paths used by common families, tried first; a generic search follows.
_KNOWN_PATHS = (
    "model.layers",
    "model.language_model.layers",
    "transformer.h",
    "gpt_neox.layers",
    "model.decoder.layers",
)


def _get_path(obj: Any, path: str) -> Any:
    for attr in path.split("."):
        obj = getattr(obj, attr, None)
        if obj is None:
            return None
    return obj


def find_decoder_layers(model: Any) -> Any:
    """The ``nn.ModuleList`` holding the model's decoder blocks.

    Prefers the known attribute paths, then the largest ModuleList whose length equals
    ``config.num_hidden_layers``.

    Raises:
        InvalidInputError: if no such list exists.
    """
    import torch

    n_layers = getattr(getattr(model, "config", None), "num_hidden_layers", None)
    for path in _KNOWN_PATHS:
        found = _get_path(model, path)
        if isinstance(found, torch.nn.ModuleList) and (n_layers is None or len(found) == n_layers):
            return found
    candidates = [
        m for m in model.modules() if isinstance(m, torch.nn.ModuleList) and (n_layers is None or len(m) == n_layers)
    ]
    if not candidates:
        raise InvalidInputError(
            f"cannot find the decoder blocks of {type(model).__name__}",
            hint="layerguard supports decoder-only transformers with a ModuleList of blocks",
        )
    return max(candidates, key=lambda m: sum(p.numel() for p in m.parameters()))


def find_base_model(model: Any) -> Any:
    """The transformer body without the LM head (cheaper when no logits are needed)."""
    base = getattr(model, "base_model", None)
    return base if base is not None and base is not model else model
