"""Rows to samples, shared by the JSONL, CSV and Hugging Face loaders: validation and error reporting."""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterable
from typing import Any, Literal, get_args

from layerguard.data.samples import Label, Sample
from layerguard.errors import InvalidInputError

OnError = Literal["raise", "skip"]

_LABELS: tuple[str, ...] = get_args(Label)
_ROLES = ("system", "user", "assistant")
_RESERVED = ("id", "category", "split", "label", "messages")
_MAX_LISTED = 10  # problems listed in one error or warning message


class SkippedRowsWarning(UserWarning):
    """Malformed rows were skipped while loading a file with ``on_error="skip"``.

    Attributes:
        path: The file (or dataset) the rows came from.
        problems: ``(line, what was wrong)`` for every skipped row.
    """

    def __init__(self, path: str, problems: list[tuple[int, str]]) -> None:
        self.path = path
        self.problems = list(problems)
        listed = "; ".join(f"line {line}: {msg}" for line, msg in problems[:_MAX_LISTED])
        more = f"; and {len(problems) - _MAX_LISTED} more" if len(problems) > _MAX_LISTED else ""
        super().__init__(f"{path}: skipped {len(problems)} malformed row(s): {listed}{more}")


class _RowError(ValueError):
    """One row cannot become a sample (message says why, without the location)."""


def _present(value: Any) -> bool:
    return value is not None and value != ""


def _parse_messages(value: Any) -> list[dict[str, str]]:
    if isinstance(value, str):  # CSV cells hold the list as JSON text
        try:
            value = json.loads(value)
        except json.JSONDecodeError as exc:
            raise _RowError(f"'messages' is not valid JSON ({exc.msg})") from None
    if not isinstance(value, list):
        raise _RowError(f"'messages' must be a list of {{'role', 'content'}} objects, got {type(value).__name__}")
    turns = []
    for i, turn in enumerate(value):
        if not isinstance(turn, dict) or not isinstance(turn.get("content"), str) or turn.get("role") not in _ROLES:
            raise _RowError(
                f"'messages'[{i}] must be {{'role': one of {', '.join(_ROLES)}, 'content': a string}}, got {turn!r:.80}"
            )
        turns.append({"role": turn["role"], "content": turn["content"]})
    return turns


def _row_to_sample(
    row: dict[str, Any],
    *,
    default_id: str,
    prompt_field: str,
    label: Label | None,
    split: str | None,
    source: str,
) -> Sample:
    """Turn one record into a sample; raises :class:`_RowError` saying what is wrong."""
    messages = _parse_messages(row["messages"]) if _present(row.get("messages")) else []
    prompt = row.get(prompt_field)
    if not _present(prompt):
        if messages and messages[-1]["role"] == "user":  # a whole conversation: its last user turn is the prompt
            prompt = messages.pop()["content"]
        else:
            raise _RowError(f"no {prompt_field!r} field (and no 'messages' list ending with a user turn)")
    if not isinstance(prompt, str):
        raise _RowError(f"{prompt_field!r} must be a string, got {type(prompt).__name__}")
    if not prompt.strip():
        raise _RowError(f"{prompt_field!r} is empty")

    raw_id = row.get("id")
    if not _present(raw_id):
        sample_id = default_id
    elif isinstance(raw_id, str | int) and not isinstance(raw_id, bool):
        sample_id = str(raw_id)
    else:
        raise _RowError(f"'id' must be a string or an integer, got {type(raw_id).__name__}")

    meta = {k: v for k, v in row.items() if k not in (*_RESERVED, prompt_field) and k is not None}

    row_label = row.get("label")
    if label is not None:
        final_label: str = label
        if _present(row_label) and row_label != label:
            meta["row_label"] = row_label
    elif not _present(row_label):
        final_label = "unknown"
    elif row_label in _LABELS:
        final_label = row_label
    else:
        raise _RowError(f"'label' must be one of {', '.join(_LABELS)}, got {row_label!r} (or pass label=...)")

    row_split: Any = row.get("split")
    if _present(row_split) and not isinstance(row_split, str):
        raise _RowError(f"'split' must be a string, got {type(row_split).__name__}")
    if split is not None:
        if row_split == "test" and split != "test":
            raise _RowError(f"split 'test' marks a held-out row; refusing to relabel it as {split!r}")
        final_split = split
        if _present(row_split) and row_split != split:
            meta["row_split"] = row_split
    else:
        final_split = row_split if _present(row_split) else "train"

    category: Any = row.get("category")
    if _present(category) and not isinstance(category, str):
        raise _RowError(f"'category' must be a string, got {type(category).__name__}")

    return Sample(
        id=sample_id,
        prompt=prompt,
        label=final_label,  # type: ignore[arg-type]  # checked against Label above
        category=category if _present(category) else "uncategorized",
        split=final_split,
        source=source,
        messages=tuple(messages),
        meta=meta,
    )


def _collect(
    records: Iterable[tuple[int, dict[str, Any] | str]],
    *,
    where: str,
    id_prefix: str,
    prompt_field: str,
    label: Label | None,
    split: str | None,
    source: str,
    on_error: OnError,
) -> list[Sample]:
    """Build samples from ``(line, record or parse-error message)`` pairs, applying ``on_error``."""
    if on_error not in get_args(OnError):
        raise InvalidInputError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
    if label is not None and label not in _LABELS:
        raise InvalidInputError(f"label must be one of {', '.join(_LABELS)}, got {label!r}")
    samples: list[Sample] = []
    problems: list[tuple[int, str]] = []
    seen: dict[str, int] = {}
    for line, record in records:
        try:
            if isinstance(record, str):
                raise _RowError(record)
            sample = _row_to_sample(
                record,
                default_id=f"{id_prefix}-{line}",
                prompt_field=prompt_field,
                label=label,
                split=split,
                source=source,
            )
            if sample.id in seen:
                raise _RowError(f"duplicate id {sample.id!r} (first used on line {seen[sample.id]})")
        except _RowError as exc:
            if on_error == "raise":
                raise InvalidInputError(
                    f"{where}:{line}: {exc}",
                    hint=f"fix the row, or load with on_error='skip' to skip malformed rows "
                    f'(each row needs {{"{prompt_field}": "..."}}; use prompt_field= to name another field)',
                ) from None
            problems.append((line, str(exc)))
            continue
        seen[sample.id] = line
        samples.append(sample)
    if problems:
        warnings.warn(SkippedRowsWarning(where, problems), stacklevel=3)
    if not samples:
        skipped = f" ({len(problems)} malformed row(s) skipped)" if problems else ""
        raise InvalidInputError(f"{where} holds no samples{skipped}", hint="add at least one prompt")
    return samples
