"""Hugging Face datasets, through the optional ``datasets`` package (imported lazily)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

from layerguard.data.rows import OnError, _collect, _present
from layerguard.data.samples import Label, Sample
from layerguard.errors import InvalidInputError, MissingPackageError, OfflineError


def _hf_offline() -> bool:
    return any(
        os.environ.get(v, "").lower() in ("1", "true", "yes", "on") for v in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")
    )


def load_hf_dataset(
    dataset_id: str,
    *,
    split: str = "train",
    prompt_field: str = "prompt",
    label: Label | None = None,
    config: str | None = None,
    revision: str | None = None,
    on_error: OnError = "raise",
) -> list[Sample]:
    """Load one split of a Hugging Face dataset with the optional ``datasets`` package.

    Rows are read like JSONL records (see :func:`load_jsonl`); ids default to
    ``<dataset_id>-<split>-<row>``. The sample split is the dataset's split name
    (``validation`` becomes ``val``) unless a row has a ``split`` field.

    Args:
        dataset_id: Hub id such as ``"org/name"`` (or anything ``datasets.load_dataset`` accepts).
        split: The split to load.
        prompt_field: Name of the prompt column.
        label: Label for every sample (see :func:`load_jsonl`).
        config: Dataset configuration name, if it has several.
        revision: Git revision of the dataset repository.
        on_error: ``"raise"`` or ``"skip"`` (see :func:`load_jsonl`).

    Raises:
        MissingPackageError: ``datasets`` is not installed.
        OfflineError: the dataset cannot be fetched (no network, offline mode, or unknown id).
        InvalidInputError: unknown split, no prompt column, malformed rows or no rows.
    """
    try:
        import datasets  # lazy: an optional, heavy dependency
    except ImportError:
        raise MissingPackageError(
            f"loading the Hugging Face dataset {dataset_id!r} needs the 'datasets' package, which is not installed",
            hint="pip install datasets  (or export the data to a local .jsonl/.csv file and load that)",
        ) from None
    try:
        ds = datasets.load_dataset(dataset_id, name=config, split=split, revision=revision)
    except ValueError as exc:  # unknown split or configuration
        raise InvalidInputError(
            f"cannot load split {split!r} of Hugging Face dataset {dataset_id!r}: {exc}",
            hint="check the split (train/validation/test) and config= names on the dataset card",
        ) from None
    except OSError as exc:  # ConnectionError, FileNotFoundError/DatasetNotFoundError, hub HTTP errors
        offline = " (offline mode is on: HF_HUB_OFFLINE/HF_DATASETS_OFFLINE)" if _hf_offline() else ""
        raise OfflineError(
            f"cannot load Hugging Face dataset {dataset_id!r}{offline}: it is not cached and the hub is "
            f"unreachable, or the id does not exist ({type(exc).__name__}: {str(exc)[:200]})",
            hint="check the id; or download the data where there is network, save it as JSONL/CSV "
            "and pass the local .jsonl/.csv file instead",
        ) from None
    columns = list(getattr(ds, "column_names", None) or [])
    if columns and prompt_field not in columns and "messages" not in columns:
        raise InvalidInputError(
            f"Hugging Face dataset {dataset_id!r} has no column {prompt_field!r} (columns: {', '.join(columns)})",
            hint="pass prompt_field= naming the prompt column",
        )
    sample_split = "val" if split == "validation" else split

    def records() -> Iterator[tuple[int, dict[str, Any] | str]]:
        for i, row in enumerate(ds):
            record = dict(row)
            if not _present(record.get("split")):
                record["split"] = sample_split
            yield i, record

    return _collect(
        records(),
        where=f"hf:{dataset_id}:{split} row",
        id_prefix=f"{dataset_id}-{split}",
        prompt_field=prompt_field,
        label=label,
        split=None,
        source=f"hf:{dataset_id}:{split}",
        on_error=on_error,
    )
