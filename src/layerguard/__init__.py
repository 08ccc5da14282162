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
    from layerguard.models import LoadedModel, PromptPositions, encode_prompt, load_model

_LAZY = {
    "load_model": "layerguard.models",
    "LoadedModel": "layerguard.models",
    "PromptPositions": "layerguard.models",
    "encode_prompt": "layerguard.models",
    "capture_activations": "layerguard.activations",
    "ActivationSet": "layerguard.activations",
    "HookPoint": "layerguard.activations",
    "residual_hooks": "layerguard.activations",
}

__all__ = [
    "ActivationSet",
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
