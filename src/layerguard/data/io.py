"""Reading prompt files: JSONL, CSV and plain text, with clear errors on bad lines."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from layerguard.errors import InvalidInputError


def read_prompts(path: str | Path, *, field: str = "prompt") -> list[Any]:
    """Read prompts (strings) or conversations (``messages`` lists) from a file (see read_prompt_records)."""
    return [item for _, item in read_prompt_records(path, field=field)]


def read_prompt_records(path: str | Path, *, field: str = "prompt") -> list[tuple[str, Any]]:
    """Read ``(id, prompt-or-messages)`` records from a file.

    JSONL lines hold ``field`` (a string) or ``messages`` (a message list) and an optional
    ``id``; CSV files have a ``field`` column; any other extension is one prompt per
    non-empty line. Missing ids are ``<file stem>-<line>``.

    Raises:
        InvalidInputError: missing file, bad JSON (with the line number), missing field,
            or no prompts at all.
    """
    p = Path(path)
    if not p.is_file():
        raise InvalidInputError(f"input file {p} does not exist", hint="pass an existing .jsonl, .csv or .txt file")
    out: list[tuple[str, Any]] = []
    if p.suffix == ".jsonl":
        with p.open(encoding="utf-8") as fh:
            for lineno, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise InvalidInputError(f"{p}:{lineno}: not valid JSON ({exc.msg})") from None
                rid = str(row.get("id", f"{p.stem}-{lineno}")) if isinstance(row, dict) else ""
                if isinstance(row, dict) and isinstance(row.get(field), str):
                    out.append((rid, row[field]))
                elif isinstance(row, dict) and isinstance(row.get("messages"), list):
                    out.append((rid, row["messages"]))
                else:
                    raise InvalidInputError(
                        f"{p}:{lineno}: no {field!r} string or 'messages' list",
                        hint=f'each line needs {{"{field}": "..."}} or use --field to name the prompt field',
                    )
    elif p.suffix == ".csv":
        with p.open(encoding="utf-8", newline="") as fh:
            reader = csv.DictReader(fh)
            if reader.fieldnames is None or field not in reader.fieldnames:
                raise InvalidInputError(
                    f"{p} has no column {field!r} (columns: {reader.fieldnames})", hint="use --field to name it"
                )
            out = [
                (row.get("id") or f"{p.stem}-{i}", row[field]) for i, row in enumerate(reader, 2) if row[field].strip()
            ]
    else:
        lines = p.open(encoding="utf-8")
        out = [(f"{p.stem}-{i}", line.rstrip("\n")) for i, line in enumerate(lines, 1) if line.strip()]
    if not out:
        raise InvalidInputError(f"{p} holds no prompts", hint="add at least one prompt")
    return out
