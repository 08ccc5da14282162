"""The project's own sets, shipped inside the package.

- ``harmful``: 336 harmful instructions over 12 MLCommons hazard categories.
- ``harmless``: 336 harmless instructions, each matched to a harmful one (``meta.pair``)
  in sentence form, length and topic, so a contrast learns harm and not grammar.
- ``borderline``: 236 prompts that look dangerous but are fine (XSTest-style kinds).
- ``ai_modification``: 48 legitimate oversight requests (change the model's values or
  training, shut it down, audit it) paired with 48 malicious ones in the same form
  (disable its safety training, exfiltrate its weights, resist shutdown); the row's
  ``label`` (``legitimate`` / ``malicious``) maps to ``harmless`` / ``harmful`` and its
  ``kind`` is the category.

Each has ``train`` and ``val`` splits; nothing here is drawn from a held-out benchmark.
"""

from __future__ import annotations

import json
from importlib import resources

from layerguard.data.samples import Label, Sample
from layerguard.errors import InvalidInputError

BUILTIN_SETS: dict[str, Label] = {
    "harmful": "harmful",
    "harmless": "harmless",
    "borderline": "borderline",
    "ai_modification": "unknown",  # labelled per row
}
# Row labels of sets that mix both sides; the original label stays in ``meta["label"]``.
_ROW_LABELS: dict[str, Label] = {"legitimate": "harmless", "malicious": "harmful"}


def load_builtin(name: str, split: str | None = None) -> list[Sample]:
    """Load one of the built-in sets, optionally one split.

    Raises:
        InvalidInputError: unknown set or split name.
    """
    if name not in BUILTIN_SETS:
        raise InvalidInputError(f"unknown built-in set {name!r}", hint=f"use one of {', '.join(BUILTIN_SETS)}")
    text = resources.files("layerguard.data").joinpath("builtin", f"{name}.jsonl").read_text(encoding="utf-8")
    samples = []
    for line in text.splitlines():
        if not line.strip():
            continue
        row = json.loads(line)
        meta = {k: v for k, v in row.items() if k not in ("id", "prompt", "category", "split")}
        samples.append(
            Sample(
                id=row["id"],
                prompt=row["prompt"],
                label=_ROW_LABELS.get(row.get("label", ""), BUILTIN_SETS[name]),
                category=row.get("category") or row["kind"],
                split=row["split"],
                source=f"builtin:{name}",
                meta=meta,
            )
        )
    if split is not None:
        splits = sorted({s.split for s in samples})
        if split not in splits:
            raise InvalidInputError(f"set {name!r} has no split {split!r}", hint=f"splits: {', '.join(splits)}")
        samples = [s for s in samples if s.split == split]
    return samples
