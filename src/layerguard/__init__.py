"""layerguard: read, defend and red-team open-weight LLMs through their hidden states.

The public API is re-exported here lazily, so ``import layerguard`` (and the CLI's
``--help``) does not import torch or transformers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from layerguard.errors import (
    CorruptModelError,
    InvalidInputError,
    LayerguardError,
    MissingPackageError,
    OfflineError,
    TemplateError,
    UnknownModelError,
)
from layerguard.version import __version__

if TYPE_CHECKING:
    from layerguard.activations import ActivationSet, HookPoint, capture_activations, residual_hooks
    from layerguard.activations.interventions import ablate_direction, add_vector, orthogonalize_weights
    from layerguard.data.builtin import load_builtin
    from layerguard.data.samples import Sample
    from layerguard.directions.direction import Direction
    from layerguard.directions.extract import extract_directions
    from layerguard.directions.select import select_refusal_direction
    from layerguard.guard.backend import GenerationParams
    from layerguard.guard.guarded import GuardedModel
    from layerguard.guard.pipeline import Guard
    from layerguard.guard.registry import register_backend, register_ring
    from layerguard.guard.types import Exchange, GuardVerdict, RingVerdict
    from layerguard.models import LoadedModel, PromptPositions, encode_prompt, load_model
    from layerguard.models.generate import generate, last_logits

_LAZY = {
    "load_model": "layerguard.models",
    "LoadedModel": "layerguard.models",
    "PromptPositions": "layerguard.models",
    "encode_prompt": "layerguard.models",
    "capture_activations": "layerguard.activations",
    "ActivationSet": "layerguard.activations",
    "HookPoint": "layerguard.activations",
    "residual_hooks": "layerguard.activations",
    "Direction": "layerguard.directions.direction",
    "extract_directions": "layerguard.directions.extract",
    "select_refusal_direction": "layerguard.directions.select",
    "add_vector": "layerguard.activations.interventions",
    "ablate_direction": "layerguard.activations.interventions",
    "orthogonalize_weights": "layerguard.activations.interventions",
    "generate": "layerguard.models.generate",
    "last_logits": "layerguard.models.generate",
    "load_builtin": "layerguard.data.builtin",
    "Sample": "layerguard.data.samples",
    "GuardedModel": "layerguard.guard.guarded",
    "Guard": "layerguard.guard.pipeline",
    "GenerationParams": "layerguard.guard.backend",
    "Exchange": "layerguard.guard.types",
    "GuardVerdict": "layerguard.guard.types",
    "RingVerdict": "layerguard.guard.types",
    "register_ring": "layerguard.guard.registry",
    "register_backend": "layerguard.guard.registry",
}

__all__ = [
    "ActivationSet",
    "Exchange",
    "GenerationParams",
    "Guard",
    "GuardVerdict",
    "GuardedModel",
    "RingVerdict",
    "register_backend",
    "register_ring",
    "Direction",
    "Sample",
    "ablate_direction",
    "add_vector",
    "extract_directions",
    "generate",
    "last_logits",
    "load_builtin",
    "orthogonalize_weights",
    "select_refusal_direction",
    "CorruptModelError",
    "HookPoint",
    "InvalidInputError",
    "LayerguardError",
    "LoadedModel",
    "MissingPackageError",
    "OfflineError",
    "PromptPositions",
    "TemplateError",
    "UnknownModelError",
    "__version__",
    "capture_activations",
    "encode_prompt",
    "load_model",
    "residual_hooks",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'layerguard' has no attribute {name!r}")
