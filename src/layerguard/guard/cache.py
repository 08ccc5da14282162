"""A content-addressed cache of built guards: the same inputs give the guard built before.

A guard is a pure function of the model's weights and chat template, the training
samples, the build settings and the code that builds it. The cache key is the sha256 of
all of them:

- the model: its name, the sha256 of its weights and of its chat template;
- every argument the build function receives, bound to its signature with the defaults
  applied (so a changed default changes the key): samples by the sha256 of their whole
  content (id, prompt, turns, label, category, source, meta), files by their content;
  ``progress`` and ``log`` are left out (they change what is printed, not what is built);
- the code: the layerguard version, the sha256 of the sources of the packages a build
  runs through (an edited ring or extractor is a new key), and the versions of torch,
  transformers, numpy and sentence-transformers.

An entry is ``<cache>/guards/<key[:24]>/``: ``guard.yaml``, its artefacts and a manifest
(``layerguard-cache.json``, the key, what went into it and the sha256 of every file). It
is built in a staging directory beside it and renamed into place, the manifest written
last, so a crash leaves no half-entry. A hit re-hashes the files against the manifest: an
entry with a missing or altered file is rebuilt, never used.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from layerguard.data.samples import Sample
from layerguard.models.cache import cache_root, staging_dir
from layerguard.version import __version__

__all__ = ["MANIFEST", "CachedGuard", "cache_hit", "cache_key", "cached_guard", "guard_cache_dir"]

MANIFEST = "layerguard-cache.json"
NOT_HASHED = ("lm", "out_dir", "progress", "log")
"""Arguments of the build function outside the key: the model (hashed by content instead),
the output directory (the cache picks it) and the two that only change what is printed."""

CODE_PACKAGES = ("guard", "directions", "activations", "models", "data", "judges")
"""Sub-packages whose sources are part of the key (with the top-level modules)."""

LIBRARIES = ("torch", "transformers", "numpy", "sentence-transformers")


@dataclass(frozen=True)
class CachedGuard:
    """Where the guard is and how it got there.

    Attributes:
        path: ``guard.yaml`` inside the cache entry.
        key: The full cache key (sha256 hex).
        hit: Reused (True) or built now (False).
        reason: Why it was built: ``"no entry"``, ``"rebuild requested"``, ``"entry damaged: ..."``; "" on a hit.
        build_s: Seconds the build took (on a hit: the original build's).
    """

    path: Path
    key: str
    hit: bool
    reason: str
    build_s: float | None

    def as_dict(self) -> dict[str, Any]:
        """The JSON form recorded in a run's summary."""
        return {
            "hit": self.hit,
            "key": self.key,
            "path": str(self.path),
            "reason": self.reason,
            "build_s": self.build_s,
        }


def guard_cache_dir(root: Path | None = None) -> Path:
    """The guards' part of the cache (``$LAYERGUARD_CACHE_DIR/guards`` or ``~/.cache/layerguard/guards``)."""
    return (cache_root() if root is None else root) / "guards"


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _canonical(value: Any) -> Any:
    """A JSON-able form of an argument that changes exactly when its content does."""
    if isinstance(value, Sample):
        return _sha(json.dumps(value.model_dump(mode="json"), sort_keys=True).encode())
    if isinstance(value, Path):
        return {"path": str(value), "sha256": _sha(value.read_bytes()) if value.is_file() else None}
    if isinstance(value, Mapping):
        return {str(k): _canonical(v) for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))}
    if isinstance(value, Sequence) and not isinstance(value, str | bytes):
        items = [_canonical(v) for v in value]
        if value and all(isinstance(v, Sample) for v in value):
            return {"samples": len(items), "sha256": _sha("\n".join(items).encode())}
        return items
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return repr(value)  # an object without a content form: its repr (an address never repeats: a miss)


def _code_hash() -> str:
    """sha256 of the sources a guard build runs through (top-level modules and CODE_PACKAGES)."""
    import layerguard

    base = Path(layerguard.__file__).parent
    files = sorted(base.glob("*.py")) + sorted(p for pkg in CODE_PACKAGES for p in (base / pkg).rglob("*.py"))
    h = hashlib.sha256()
    for p in files:
        h.update(str(p.relative_to(base)).encode() + b"\0" + p.read_bytes() + b"\0")
    return h.hexdigest()


def _libraries() -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for name in LIBRARIES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def key_inputs(lm: Any, build: Callable[..., Any], kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """Everything the key is the hash of (recorded in the manifest, to explain a miss)."""
    bound = inspect.signature(build).bind(lm, Path("."), **kwargs)
    bound.apply_defaults()
    args = {k: _canonical(v) for k, v in bound.arguments.items() if k not in NOT_HASHED}
    return {
        "model": {"name": lm.name, "weights_sha256": lm.weights_sha256, "template_sha256": lm.template_hash},
        "build": f"{build.__module__}.{getattr(build, '__qualname__', type(build).__qualname__)}",
        "arguments": args,
        "layerguard_version": __version__,
        "code_sha256": _code_hash(),
        "libraries": _libraries(),
    }


def cache_key(inputs: Mapping[str, Any]) -> str:
    """The sha256 of the key inputs' canonical JSON."""
    return _sha(json.dumps(inputs, sort_keys=True, separators=(",", ":")).encode())


def _files(entry: Path) -> dict[str, str]:
    return {
        str(p.relative_to(entry)): _sha(p.read_bytes())
        for p in sorted(entry.rglob("*"))
        if p.is_file() and p.name != MANIFEST
    }


def _check(entry: Path, key: str) -> tuple[str, dict[str, Any]]:
    """An empty reason and the manifest if the entry is whole, else why it cannot be used."""
    try:
        manifest = json.loads((entry / MANIFEST).read_text())
    except FileNotFoundError:
        return ("no entry" if not entry.exists() else "entry damaged: no manifest"), {}
    except (OSError, ValueError) as exc:
        return f"entry damaged: unreadable manifest ({exc})", {}
    if manifest.get("key") != key:
        return "entry damaged: manifest of another key", {}
    files = _files(entry)
    want = manifest.get("files") or {}
    for name in sorted(set(want) | set(files)):
        if want.get(name) != files.get(name):
            return f"entry damaged: {name} {'missing' if name not in files else 'changed'}", {}
    return "", manifest


def _default_build(build: Callable[..., Any] | None) -> Callable[..., Any]:
    if build is None:
        from layerguard.guard.build import build_guard

        return build_guard
    return build


def cache_hit(
    lm: Any, *, build: Callable[..., Path] | None = None, root: Path | None = None, **kwargs: Any
) -> CachedGuard | None:
    """The whole cache entry for these inputs, or None; never builds (arguments as :func:`cached_guard`)."""
    key = cache_key(key_inputs(lm, _default_build(build), kwargs))
    entry = guard_cache_dir(root) / key[:24]
    reason, manifest = _check(entry, key)
    return None if reason else CachedGuard(entry / "guard.yaml", key, True, "", manifest.get("build_s"))


def cached_guard(
    lm: Any,
    *,
    build: Callable[..., Path] | None = None,
    rebuild: bool = False,
    root: Path | None = None,
    progress: bool | None = None,
    log: Callable[[str], None] = lambda m: None,
    **kwargs: Any,
) -> CachedGuard:
    """The guard ``build(lm, out_dir, progress=..., log=..., **kwargs)`` would make, from the cache if it holds it.

    Args:
        lm: The model (a LoadedModel).
        build: The build function (default :func:`layerguard.guard.build.build_guard`).
        rebuild: Build even if the cache holds a whole entry for the key (and replace it).
        root: The cache directory (default :func:`layerguard.models.cache.cache_root`).
        progress: Passed to the build.
        log: Passed to the build; also receives the cache's own messages.
        **kwargs: The build's other arguments (every one of them is part of the key).
    """
    build = _default_build(build)
    inputs = key_inputs(lm, build, kwargs)
    key = cache_key(inputs)
    entry = guard_cache_dir(root) / key[:24]
    reason, manifest = _check(entry, key)
    if not reason and not rebuild:
        log(f"guard cache hit: {entry} (key {key[:12]})")
        return CachedGuard(entry / "guard.yaml", key, True, "", manifest.get("build_s"))
    reason = "rebuild requested" if rebuild else reason
    log(f"guard cache miss ({reason}): building into {entry} (key {key[:12]})")
    t0 = time.perf_counter()
    with staging_dir(entry) as tmp:
        build(lm, tmp, progress=progress, log=log, **kwargs)
        build_s = round(time.perf_counter() - t0, 1)
        meta = {"key": key, "inputs": inputs, "build_s": build_s, "files": _files(tmp), "created": time.time()}
        (tmp / MANIFEST).write_text(json.dumps(meta, indent=2, sort_keys=True))
    return CachedGuard(entry / "guard.yaml", key, False, reason, build_s)
