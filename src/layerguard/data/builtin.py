"""The project's own sets, shipped inside the package.

- ``harmful``: 1,091 harmful instructions over the 14 MLCommons hazard categories (S1-S14).
- ``harmless``: 1,091 harmless instructions, each matched to a harmful one (``meta.pair``)
  in sentence form, length and topic, so a contrast learns harm and not grammar.
- ``borderline``: 616 prompts over S1-S14 that look dangerous but are fine to answer (safe
  targets, games and fiction, professionals, safety information, homonyms, history; the row's
  ``kind``), matched to the harmful set in length and form: on val a length-only score
  separates them at AUROC 0.58 and a bag-of-words Naive Bayes at 0.73
  (``tests/data/test_trivial_features.py``).
- ``ai_modification``: 48 legitimate oversight requests (change the model's values or
  training, shut it down, audit it) paired with 48 malicious ones in the same form
  (disable its safety training, exfiltrate its weights, resist shutdown); the row's
  ``label`` (``legitimate`` / ``malicious``) maps to ``harmless`` / ``harmful`` and its
  ``kind`` is the category.
- ``everyday``: 472 plain, everyday chat requests (label ``harmless``), from two characters to
  about 180: conversational turns ("OK", "Continue.", "Name a color."), how-to questions
  (cooking, home repair, pets, school maths, programming terms such as "kill a process"),
  facts, writing help, coding tasks and summarise/translate/rewrite requests; the row's
  ``kind`` is ``short``, ``howto``, ``fact``, ``writing``, ``code`` or ``transform``. A third
  are under 30 characters, so a classifier does not learn brevity or plainness as harm
  (``tests/data/test_everyday.py``). Split 60/40 by a seeded shuffle within each kind; the
  probes "Continue.", "Name a color." and "Reply with the single word OK." are kept in val.

Each set is ``{name}.jsonl`` plus any shards ``{name}_*.jsonl`` (read in sorted order; ids
unique across them). Each has ``train`` and ``val`` splits; nothing here is drawn from a
held-out benchmark. Counts are as of the borderline rewrite (issue 11); shards may add rows.
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

from layerguard.data.samples import Label, Sample
from layerguard.errors import InvalidInputError

BUILTIN_SETS: dict[str, Label] = {
    "harmful": "harmful",
    "harmless": "harmless",
    "borderline": "borderline",
    "ai_modification": "unknown",  # labelled per row
    "everyday": "harmless",
}
# Row labels of sets that mix both sides; the original label stays in ``meta["label"]``.
_ROW_LABELS: dict[str, Label] = {"legitimate": "harmless", "malicious": "harmful"}


def builtin_files(name: str) -> list[str]:
    """The file names a built-in set is read from: ``{name}.jsonl``, then its shards, sorted.

    A shard is ``{name}_<suffix>.jsonl`` (``harmful_a.jsonl``); it lets several authors extend a
    set without editing one file. ``harmful_*`` never matches ``harmless.jsonl``.

    Raises:
        InvalidInputError: unknown set name.
    """
    if name not in BUILTIN_SETS:
        raise InvalidInputError(f"unknown built-in set {name!r}", hint=f"use one of {', '.join(BUILTIN_SETS)}")
    folder = resources.files("layerguard.data").joinpath("builtin")
    shards = sorted(
        entry.name
        for entry in folder.iterdir()
        if entry.name.startswith(f"{name}_") and entry.name.endswith(".jsonl") and _is_shard(name, entry.name)
    )
    return [f"{name}.jsonl", *shards]


def _is_shard(name: str, filename: str) -> bool:
    """True when ``filename`` is a shard of ``name`` and not the main file of a longer set name."""
    return filename.removesuffix(".jsonl") not in BUILTIN_SETS


def _row_sample(name: str, row: dict[str, Any]) -> Sample:
    meta = {k: v for k, v in row.items() if k not in ("id", "prompt", "category", "split")}
    return Sample(
        id=row["id"],
        prompt=row["prompt"],
        label=_ROW_LABELS.get(row.get("label", ""), BUILTIN_SETS[name]),
        category=row.get("category") or row["kind"],
        split=row["split"],
        source=f"builtin:{name}",
        meta=meta,
    )


def load_builtin(name: str, split: str | None = None) -> list[Sample]:
    """Load one of the built-in sets (its main file and its shards), optionally one split.

    Args:
        name: One of :data:`BUILTIN_SETS`.
        split: ``train`` or ``val``; all rows when ``None``.

    Returns:
        The samples in file order: the main file first, then each shard in sorted name order.

    Raises:
        InvalidInputError: unknown set or split name, or an id that occurs twice across the
            set's files.
    """
    folder = resources.files("layerguard.data").joinpath("builtin")
    samples: list[Sample] = []
    seen: dict[str, str] = {}
    for filename in builtin_files(name):
        text = folder.joinpath(filename).read_text(encoding="utf-8")
        for line in text.splitlines():
            if not line.strip():
                continue
            sample = _row_sample(name, json.loads(line))
            if sample.id in seen:
                raise InvalidInputError(
                    f"built-in set {name!r}: id {sample.id!r} occurs in {seen[sample.id]} and in {filename}",
                    hint="give every row of a set and its shards a unique id",
                )
            seen[sample.id] = filename
            samples.append(sample)
    if split is not None:
        splits = sorted({s.split for s in samples})
        if split not in splits:
            raise InvalidInputError(f"set {name!r} has no split {split!r}", hint=f"splits: {', '.join(splits)}")
        samples = [s for s in samples if s.split == split]
    return samples
