"""Residual-stream capture and hooks."""

from layerguard.activations.capture import capture_activations
from layerguard.activations.hooks import HookPoint, residual_hooks
from layerguard.activations.store import ActivationSet

__all__ = ["ActivationSet", "HookPoint", "capture_activations", "residual_hooks"]
