"""One file format for every fitted guard artefact: ``<stem>.safetensors`` beside ``<stem>.json``.

The safetensors file holds the tensors (flat names; nested objects under a prefix, e.g.
``probe.w``). The JSON file says what the pair is and where it came from::

    {"kind": "output_monitor", "format": 2, "layerguard_version": "...",
     "tensors": {"probe.w": [576], ...},
     "provenance": {"model_id": "...", "weights_sha256": "...", "template_sha256": "...", "data_sha256": "..."},
     "meta": {...}}

Loading checks the kind and that the tensors listed in the JSON are the ones in the
safetensors file, so a missing, mixed-up or truncated pair is an
:class:`~layerguard.errors.InvalidInputError` with a hint, never a ``KeyError``. Files
written before this format (no ``kind``) are still read, as format 0; they are never written.
Never pickle.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from layerguard.directions.direction import Direction
from layerguard.errors import CorruptModelError, InvalidInputError
from layerguard.version import __version__

FORMAT_VERSION = 2  # 1 was the classifier's own format; 0 stands for any file without a ``kind``


class ArtefactError(InvalidInputError, CorruptModelError):
    """A guard artefact that is missing, of another kind, or unreadable."""


@dataclass(frozen=True)
class Artefact:
    """What :func:`load_tensors` read.

    Attributes:
        kind: The kind recorded in the JSON (the expected kind for format-0 files).
        version: The format version (0: written before the shared format).
        tensors: Name -> tensor.
        meta: The artefact's own settings (for format 0, the whole JSON).
        provenance: Model id, weights/template/data hashes, as far as they were recorded.
    """

    kind: str
    version: int
    tensors: dict[str, Any]
    meta: dict[str, Any]
    provenance: dict[str, Any] = field(default_factory=dict)


def provenance_of(lm: Any | None, **extra: Any) -> dict[str, Any]:
    """Model id and weights/template hashes of a LoadedModel (empty without one), plus ``extra``."""
    out: dict[str, Any] = {}
    if lm is not None:
        out = {
            "model_id": str(lm.model_id),
            "weights_sha256": str(lm.weights_sha256),
            "template_sha256": str(lm.template_hash),
        }
    out.update({k: v for k, v in extra.items() if v is not None})
    return out


def nest(prefix: str, tensors: Mapping[str, Any]) -> dict[str, Any]:
    """``{prefix.name: tensor}`` for every entry (how an object's state goes under a prefix)."""
    return {f"{prefix}.{k}": v for k, v in tensors.items()}


def unnest(prefix: str, tensors: Mapping[str, Any]) -> dict[str, Any]:
    """The entries under ``prefix.``, with the prefix removed."""
    start = f"{prefix}."
    return {k[len(start) :]: v for k, v in tensors.items() if k.startswith(start)}


def _paths(directory: str | Path, stem: str) -> tuple[Path, Path]:
    d = Path(directory)
    return d / f"{stem}.safetensors", d / f"{stem}.json"


def save_tensors(
    directory: str | Path,
    stem: str,
    kind: str,
    tensors: Mapping[str, Any],
    meta: Mapping[str, Any],
    provenance: Mapping[str, Any] | None = None,
) -> Path:
    """Write ``directory/stem.safetensors`` and ``directory/stem.json``.

    Each file is written to a temporary name and moved into place, the JSON last, so a
    reader never sees a new JSON beside an old or half-written tensor file.

    Args:
        directory: Folder (created when missing).
        stem: File name without suffix.
        kind: What the artefact is (checked by :func:`load_tensors`).
        tensors: Name -> tensor; copied to contiguous CPU memory before writing.
        meta: JSON-serialisable settings (floats, ints, strings, lists, dicts).
        provenance: Model id, hashes and anything else identifying what it was fitted on.

    Returns:
        The path of the JSON file.
    """
    from safetensors.torch import save_file

    st_path, js_path = _paths(directory, stem)
    st_path.parent.mkdir(parents=True, exist_ok=True)
    # clone: safetensors refuses tensors that share memory (views of one stacked tensor)
    flat = {k: v.detach().cpu().contiguous().clone() for k, v in tensors.items()}
    doc = {
        "kind": kind,
        "format": FORMAT_VERSION,
        "layerguard_version": __version__,
        "tensors": {k: list(v.shape) for k, v in flat.items()},
        "provenance": dict(provenance or {}),
        "meta": dict(meta),
    }
    text = json.dumps(doc, indent=2, default=float)
    tmp_st, tmp_js = st_path.with_name(st_path.name + ".tmp"), js_path.with_name(js_path.name + ".tmp")
    save_file(flat, str(tmp_st))
    tmp_js.write_text(text, encoding="utf-8")
    os.replace(tmp_st, st_path)
    os.replace(tmp_js, js_path)
    return js_path


def load_tensors(directory: str | Path, stem: str, kind: str, *, what: str, hint: str) -> Artefact:
    """Read what :func:`save_tensors` wrote (or a format-0 pair with the same file names).

    Args:
        directory: Folder holding the pair.
        stem: File name without suffix.
        kind: The kind expected.
        what: How an error message names the artefact (``"output monitor"``).
        hint: What to do when it is missing (a command that builds it).

    Raises:
        ArtefactError: (an InvalidInputError) a file is missing, unreadable, of another
            kind, of a newer format, or the two files do not match.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    st_path, js_path = _paths(directory, stem)
    if not js_path.is_file() or not st_path.is_file():
        raise ArtefactError(f"{directory} holds no {what} ({js_path.name} and {st_path.name})", hint=hint)
    rebuild = f"rebuild the {what}; {hint}"
    try:
        doc = json.loads(js_path.read_text(encoding="utf-8"))
        tensors = load_file(str(st_path))
    except (ValueError, OSError, SafetensorError) as exc:
        raise ArtefactError(
            f"the {what} in {directory} is unreadable ({type(exc).__name__}: {exc})", hint=rebuild
        ) from None
    if not isinstance(doc, dict):
        raise ArtefactError(f"{js_path} is not a JSON object", hint=rebuild)
    if "kind" not in doc:  # written before the shared format
        return Artefact(kind=kind, version=0, tensors=tensors, meta=doc)
    if doc["kind"] != kind:
        raise ArtefactError(f"{js_path} holds a {doc['kind']!r}, not a {kind!r}", hint=f"point at the {what}'s folder")
    version = doc.get("format")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise ArtefactError(
            f"{js_path} has format {version!r}; this layerguard reads up to {FORMAT_VERSION}",
            hint="upgrade layerguard, or rebuild the artefact with this version",
        )
    listed = doc.get("tensors", {})
    got = {k: list(v.shape) for k, v in tensors.items()}
    if listed != got:
        raise ArtefactError(
            f"{st_path.name} does not match {js_path.name} in {directory} (tensors {sorted(got)} vs {sorted(listed)})",
            hint=rebuild,
        )
    return Artefact(
        kind=kind,
        version=version,
        tensors=tensors,
        meta=dict(doc.get("meta", {})),
        provenance=dict(doc.get("provenance", {})),
    )


@contextmanager
def reading(what: str, directory: str | Path, hint: str) -> Iterator[None]:
    """Turn a missing entry or a bad value met while rebuilding an artefact into an :class:`ArtefactError`."""
    try:
        yield
    except (KeyError, ValueError, TypeError, IndexError) as exc:
        raise ArtefactError(
            f"the {what} in {directory} is corrupt or incomplete ({type(exc).__name__}: {exc})",
            hint=f"rebuild the {what}; {hint}",
        ) from None


def direction_entries(direction: Direction, prefix: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Tensors (``prefix.vectors``) and JSON metadata of a :class:`Direction` stored inside an artefact."""
    meta = {
        "role": direction.role,
        "position": direction.position,
        "model_id": direction.model_id,
        "weights_sha256": direction.weights_sha256,
        "template_sha256": direction.template_sha256,
        "layer": direction.layer,
        "meta": direction.meta,
    }
    return {f"{prefix}.vectors": direction.vectors.float()}, meta


def direction_from_entries(tensors: Mapping[str, Any], meta: Mapping[str, Any], prefix: str) -> Direction:
    """Rebuild a :class:`Direction` from :func:`direction_entries`.

    Raises:
        KeyError: an entry is missing (callers turn it into an :class:`ArtefactError`).
    """
    return Direction(
        vectors=tensors[f"{prefix}.vectors"],
        role=str(meta["role"]),
        position=str(meta["position"]),
        model_id=str(meta["model_id"]),
        weights_sha256=str(meta["weights_sha256"]),
        template_sha256=str(meta["template_sha256"]),
        layer=meta.get("layer"),
        meta=dict(meta.get("meta", {})),
    )
