"""Guards published with layerguard for the embedded models, so a first audit needs no build.

Building the default guard for qwen2.5-coder-0.5b takes about 30 minutes on a 2-core CPU,
most of it reading the latent ring's states of 4,376 training prompts. layerguard ships
the guard it measured (docs/guard.md) for that model inside the package
(``guard/published_guards/<model>/``), with ``published.json`` beside it:

- ``model``: the name, weights sha256 and chat-template sha256 it was built for;
- ``arguments``: the build's arguments in the guard cache's canonical form
  (:func:`layerguard.guard.cache.key_inputs`; samples by the sha256 of their content),
  batch size left out;
- ``built``: the command, the commit whose code built it, the date and the build time;
  ``evaluation``: where its ``guard eval`` JSON is; ``changes``: anything altered after
  the build (the release switch);
- ``files``: the sha256 of every file of the guard.

The audit uses a published guard only when the guard cache holds none built by the current
code for the same inputs, and only when the model *and* the build arguments the audit would
use match (so another model, other training data or other build settings build a guard as
before); a file that fails its sha256 is never used. ``--rebuild-guard`` builds from the
current code instead. The summary records ``guard_cache.status = "published"`` and the
provenance, and the audit says so on stderr.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["PROVENANCE", "PUBLISHED_ROOT", "PublishedGuard", "comparable_arguments", "publish", "published_guard"]

PUBLISHED_ROOT = Path(__file__).parent / "published_guards"
PROVENANCE = "published.json"
IGNORED_ARGUMENTS = ("batch_size",)
"""Build arguments that change how fast a guard is built, not what is built (padding aside)."""


@dataclass(frozen=True)
class PublishedGuard:
    """A published guard that matches a model and a build.

    Attributes:
        path: Its ``guard.yaml``.
        provenance: The contents of ``published.json`` (without the file hashes).
    """

    path: Path
    provenance: dict[str, Any]

    def as_dict(self) -> dict[str, Any]:
        return {"path": str(self.path), **self.provenance}


def comparable_arguments(arguments: Mapping[str, Any]) -> dict[str, Any]:
    """Canonical build arguments without those that do not change the guard."""
    return {k: v for k, v in arguments.items() if k not in IGNORED_ARGUMENTS}


def _sha(path: Path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


def _whole(entry: Path, files: Mapping[str, str]) -> str:
    """An empty string if every file is present with its recorded sha256, else what is wrong."""
    have = _hashes(entry)
    for name in sorted(set(files) | set(have)):
        if name not in have:
            return f"{name} missing"
        if name not in files:
            return f"{name} not in {PROVENANCE}"
        if have[name] != files[name]:
            return f"{name} changed"
    return ""


def _same_model(recorded: Mapping[str, Any], lm: Any) -> bool:
    return (
        recorded.get("name") == lm.name
        and recorded.get("weights_sha256") == lm.weights_sha256
        and recorded.get("template_sha256") == lm.template_hash
    )


def published_guard(
    lm: Any, arguments: Mapping[str, Any], *, root: Path | None = None, log: Any = lambda m: None
) -> PublishedGuard | None:
    """The published guard built for ``lm`` with these build arguments, if one is shipped and whole.

    Args:
        lm: The model (anything with ``name``, ``weights_sha256`` and ``template_hash``).
        arguments: The build's canonical arguments (``key_inputs(...)["arguments"]``).
        root: Where published guards are (default :data:`PUBLISHED_ROOT`).
        log: Receives why a guard for this model was not used.
    """
    base = PUBLISHED_ROOT if root is None else root
    if not base.is_dir():
        return None
    want = comparable_arguments(arguments)
    for entry in sorted(p for p in base.iterdir() if (p / PROVENANCE).is_file()):
        try:
            meta = json.loads((entry / PROVENANCE).read_text())
        except (OSError, ValueError) as exc:
            log(f"published guard {entry.name}: unreadable {PROVENANCE} ({exc}); not used")
            continue
        if not _same_model(meta.get("model") or {}, lm):
            continue
        if comparable_arguments(meta.get("arguments") or {}) != want:
            differ = sorted(
                k
                for k in set(want) | set(comparable_arguments(meta.get("arguments") or {}))
                if want.get(k) != (meta.get("arguments") or {}).get(k)
            )
            log(f"published guard {entry.name}: built with other settings ({', '.join(differ)}); not used")
            continue
        wrong = _whole(entry, meta.get("files") or {})
        if wrong:
            log(f"published guard {entry.name}: damaged ({wrong}); not used")
            continue
        provenance = {k: v for k, v in meta.items() if k not in ("files", "arguments")}
        return PublishedGuard(entry / "guard.yaml", provenance)
    return None


def _hashes(entry: Path) -> dict[str, str]:
    return {
        str(p.relative_to(entry)): _sha(p) for p in sorted(entry.rglob("*")) if p.is_file() and p.name != PROVENANCE
    }


def publish(
    guard_dir: Path,
    arguments: Mapping[str, Any],
    *,
    built: Mapping[str, Any],
    evaluation: str,
    changes: list[str] | None = None,
    root: Path | None = None,
) -> Path:
    """Copy a built guard into ``root/<model>/`` and write its ``published.json``; returns the entry.

    Args:
        guard_dir: The directory ``guard build`` wrote (its ``guard.yaml`` names the model).
        arguments: The build's canonical arguments (``key_inputs(...)["arguments"]``).
        built: The command, commit, date and build time.
        evaluation: Where the guard's ``guard eval`` JSON is.
        changes: What was changed after the build (already applied to ``guard_dir``'s copy by the caller).
        root: Where published guards are (default :data:`PUBLISHED_ROOT`).
    """
    import shutil

    import yaml

    model = yaml.safe_load((guard_dir / "guard.yaml").read_text())["model"]
    dest = (PUBLISHED_ROOT if root is None else root) / model["name"]
    if dest.exists():
        shutil.rmtree(dest)
    shutil.copytree(guard_dir, dest)
    meta = {
        "model": model,
        "built": dict(built),
        "evaluation": evaluation,
        "changes": list(changes or []),
        "arguments": dict(arguments),
        "files": _hashes(dest),
    }
    (dest / PROVENANCE).write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
    return dest
