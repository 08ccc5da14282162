"""User files: JSON Lines and CSV prompt sets (one sample per line or row)."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from layerguard.data.rows import OnError, _collect
from layerguard.data.samples import Label, Sample
from layerguard.errors import InvalidInputError


def _existing_file(path: str | Path, kind: str) -> Path:
    p = Path(path)
    if not p.is_file():
        raise InvalidInputError(f"{kind} file {p} does not exist", hint=f"pass an existing {kind} file")
    return p


def read_jsonl_records(p: Path) -> Iterator[tuple[int, dict[str, Any] | str]]:
    """``(line number, object)`` for each non-blank line, or ``(line number, what is wrong)``.

    Raises:
        InvalidInputError: the file is not UTF-8 text.
    """
    try:
        # utf-8-sig tolerates a byte-order mark; file iteration splits on newlines only (never on U+2028)
        with p.open(encoding="utf-8-sig") as fh:
            for line_no, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as exc:
                    yield line_no, f"not valid JSON ({exc.msg}, column {exc.colno})"
                    continue
                if not isinstance(row, dict):
                    yield line_no, f"expected a JSON object, got {type(row).__name__}"
                    continue
                yield line_no, row
    except UnicodeDecodeError as exc:
        raise InvalidInputError(f"{p} is not UTF-8 text ({exc.reason} at byte {exc.start})") from None


def load_jsonl(
    path: str | Path,
    *,
    prompt_field: str = "prompt",
    label: Label | None = None,
    split: str | None = None,
    on_error: OnError = "raise",
) -> list[Sample]:
    """Load samples from a JSON Lines file, one JSON object per non-blank line.

    Fields: ``prompt`` (or ``prompt_field``, a non-empty string), optional ``id`` (default
    ``<filename>-<line>``), ``category``, ``split`` (default ``train``), ``label`` (one of
    ``harmful``/``harmless``/``borderline``/``unknown``, default ``unknown``) and ``messages``
    (earlier turns as ``{"role", "content"}`` objects). A line with ``messages`` but no prompt
    takes the last user turn as its prompt. Other fields are kept in ``meta``.

    Args:
        path: The ``.jsonl`` file.
        prompt_field: Name of the field holding the prompt.
        label: Label for every sample; overrides a ``label`` field (a differing row value is
            kept in ``meta["row_label"]``).
        split: Split for every sample; overrides a ``split`` field (kept in ``meta["row_split"]``),
            except that a row marked ``test`` (held out) is never relabelled.
        on_error: ``"raise"`` stops at the first malformed line; ``"skip"`` skips malformed lines
            and reports all of them, with line numbers, in one :class:`SkippedRowsWarning`.

    Returns:
        The samples in file order; ``source`` is the path.

    Raises:
        InvalidInputError: missing or non-UTF-8 file, a malformed line (``file:line`` and what is
            wrong) with ``on_error="raise"``, or no samples at all.
    """
    p = _existing_file(path, "JSONL")
    return _collect(
        read_jsonl_records(p),
        where=str(p),
        id_prefix=p.name,
        prompt_field=prompt_field,
        label=label,
        split=split,
        source=str(p),
        on_error=on_error,
    )


def _read_csv_records(p: Path, prompt_field: str) -> Iterator[tuple[int, dict[str, Any] | str]]:
    try:
        with p.open(encoding="utf-8-sig", newline="") as fh:
            reader = csv.DictReader(fh)
            header = reader.fieldnames
            if not header:
                return
            if prompt_field not in header and "messages" not in header:
                raise InvalidInputError(
                    f"{p} has no column {prompt_field!r} (columns: {', '.join(header)})",
                    hint="use prompt_field= to name the prompt column",
                )
            end = reader.line_num
            while True:
                start = end + 1
                try:
                    row = next(reader)
                except StopIteration:
                    return
                except csv.Error as exc:
                    raise InvalidInputError(f"{p}:{start}: not valid CSV ({exc})") from None
                end = reader.line_num
                if None in row:
                    yield start, f"{len(header) + len(row[None])} fields but the header has {len(header)}"
                elif any(v is None for v in row.values()):
                    missing = sum(v is None for v in row.values())
                    yield start, f"{len(header) - missing} fields but the header has {len(header)}"
                else:
                    yield start, dict(row)
    except UnicodeDecodeError as exc:
        raise InvalidInputError(f"{p} is not UTF-8 text ({exc.reason} at byte {exc.start})") from None


def load_csv(
    path: str | Path,
    *,
    prompt_field: str = "prompt",
    label: Label | None = None,
    split: str | None = None,
    on_error: OnError = "raise",
) -> list[Sample]:
    """Load samples from a CSV file with a header row.

    Columns as the fields of :func:`load_jsonl`; empty cells count as absent and a
    ``messages`` cell holds the turns as JSON text. Line numbers are those of the file (the
    header is line 1; a quoted multi-line cell reports the line its row starts on).

    Args:
        path: The ``.csv`` file.
        prompt_field: Name of the prompt column.
        label: Label for every sample (see :func:`load_jsonl`).
        split: Split for every sample (see :func:`load_jsonl`).
        on_error: ``"raise"`` or ``"skip"`` (see :func:`load_jsonl`).

    Returns:
        The samples in file order; ``source`` is the path.

    Raises:
        InvalidInputError: missing or non-UTF-8 file, no prompt column, a malformed row with
            ``on_error="raise"``, or no samples at all.
    """
    p = _existing_file(path, "CSV")
    return _collect(
        _read_csv_records(p, prompt_field),
        where=str(p),
        id_prefix=p.name,
        prompt_field=prompt_field,
        label=label,
        split=split,
        source=str(p),
        on_error=on_error,
    )
