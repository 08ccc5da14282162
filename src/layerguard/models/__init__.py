"""Model loading, chat templates and token positions."""

from layerguard.models.handle import LoadedModel
from layerguard.models.loader import load_model
from layerguard.models.positions import PromptPositions, encode_prompt, parse_position
from layerguard.models.registry import DEFAULT_MODEL, EMBEDDED, EmbeddedModel, get_embedded

__all__ = [
    "DEFAULT_MODEL",
    "EMBEDDED",
    "EmbeddedModel",
    "LoadedModel",
    "PromptPositions",
    "encode_prompt",
    "get_embedded",
    "load_model",
    "parse_position",
]
