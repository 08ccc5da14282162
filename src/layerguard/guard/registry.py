"""Registries of rings and backends: each implementation is registered by name with a decorator.

``guard.yaml`` names rings by their registry name; :func:`build_ring` builds one from its
parameters, the guard's artefact directory and the served model. A user's package extends
a registry by decorating its own factory and importing it, or by declaring an entry point
in the group ``layerguard.rings`` (or ``layerguard.backends``) that points at the module
holding the decorated factories; entry points are loaded the first time a registry is read.

Built-in implementations live in modules that are imported lazily (when a registry is
first read), so ``import layerguard`` stays fast and torch is not imported by a text ring.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from layerguard.errors import InvalidInputError
from layerguard.guard.types import Ring, Stage

RingFactory = Callable[[dict[str, Any], Path, Any], Ring]
"""``factory(params, base_dir, lm) -> Ring``; ``lm`` is the served model or None (text-only)."""


@dataclass(frozen=True)
class RingSpec:
    """A registered ring: its name, stage, whether it reads the served model's states, its factory."""

    name: str
    stage: Stage
    reads_states: bool
    factory: RingFactory
    doc: str


@dataclass(frozen=True)
class BackendSpec:
    """A registered backend: its name, whether it is text-only, its factory."""

    name: str
    text_only: bool
    factory: Callable[..., Any]
    doc: str


_RINGS: dict[str, RingSpec] = {}
_BACKENDS: dict[str, BackendSpec] = {}
_BUILTIN_MODULES = ("layerguard.guard.rings.factories", "layerguard.guard.backends.factories")
_loaded: list[bool] = []  # a one-element latch: built-ins and entry points imported


def register_ring(name: str, *, stage: Stage, reads_states: bool = False) -> Callable[[RingFactory], RingFactory]:
    """Register a ring factory under ``name``.

    Args:
        name: The name ``guard.yaml`` uses; it must equal the ``name`` of the rings built.
        stage: The stage of the rings built (checked by the registry's contract test).
        reads_states: True when the ring reads the served model's hidden states, so it is
            unavailable with a text-only backend.
    """

    def deco(factory: RingFactory) -> RingFactory:
        _RINGS[name] = RingSpec(name, stage, reads_states, factory, (factory.__doc__ or "").strip())
        return factory

    return deco


def register_backend(name: str, *, text_only: bool) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register a backend factory (``factory(**options) -> Backend``) under ``name``."""

    def deco(factory: Callable[..., Any]) -> Callable[..., Any]:
        _BACKENDS[name] = BackendSpec(name, text_only, factory, (factory.__doc__ or "").strip())
        return factory

    return deco


def _load() -> None:
    if _loaded:
        return
    _loaded.append(True)
    for module in _BUILTIN_MODULES:
        importlib.import_module(module)
    for group in ("layerguard.rings", "layerguard.backends"):
        for ep in entry_points(group=group):
            ep.load()  # importing the module runs its decorators


def ring_specs() -> dict[str, RingSpec]:
    """Every registered ring, by name."""
    _load()
    return dict(_RINGS)


def backend_specs() -> dict[str, BackendSpec]:
    """Every registered backend, by name."""
    _load()
    return dict(_BACKENDS)


def ring_spec(name: str, where: str = "") -> RingSpec:
    """The spec of one ring.

    Raises:
        InvalidInputError: an unknown name, with the known ones as the hint.
    """
    specs = ring_specs()
    if name not in specs:
        prefix = f"{where}: " if where else ""
        raise InvalidInputError(f"{prefix}unknown ring {name!r}", hint=f"rings: {', '.join(sorted(specs))}")
    return specs[name]


def build_ring(name: str, params: dict[str, Any], base: Path, lm: Any, where: str = "") -> Ring:
    """Build a registered ring from its parameters, artefact directory and the served model."""
    return ring_spec(name, where).factory(dict(params), base, lm)


def build_backend(name: str, **options: Any) -> Any:
    """Build a registered backend.

    Raises:
        InvalidInputError: an unknown backend name.
    """
    specs = backend_specs()
    if name not in specs:
        raise InvalidInputError(f"unknown backend {name!r}", hint=f"backends: {', '.join(sorted(specs))}")
    return specs[name].factory(**options)
