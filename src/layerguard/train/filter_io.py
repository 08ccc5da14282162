"""Streaming input and output of the corpus filter, bad lines, and the resumable state.

Holds the reading side (input path checks, batches of raw lines bounded by count and bytes,
parsing a line into a record and its text, or into an error), the writing side (JSON lines,
bad-line records for the dropped file) and the resume state: the state file next to the kept
output, the input fingerprint, atomic saving, checking a saved state against a new run and
truncating the outputs to their committed sizes.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from layerguard.errors import InvalidInputError
from layerguard.train.filter_summary import FilterSummary

__all__ = ["input_fingerprint", "state_path_for"]

STATE_FORMAT = 1
MAX_BATCH_BYTES = 64 * 2**20  # a batch also ends after this many bytes of input, so huge lines stay bounded
FINGERPRINT_CHUNK = 2**20
MAX_BAD_EXAMPLES = 50  # bad lines listed in the summary (all are counted)
MAX_BAD_LOGGED = 20  # bad lines reported one by one through ``log`` (the rest are counted)


# --------------------------------------------------------------------------------------------
# Paths, reading, parsing
# --------------------------------------------------------------------------------------------


def _same_file(a: Path, b: Path) -> bool:
    if a.resolve() == b.resolve():
        return True
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return False


def _check_paths(inp: Path, kept: Path, dropped: Path, summary: Path | None) -> None:
    if not inp.exists():
        raise InvalidInputError(f"input file {inp} does not exist", hint="pass an existing JSONL file")
    if not inp.is_file():
        raise InvalidInputError(f"input {inp} is not a regular file", hint="pass a JSONL file, one document per line")
    if not os.access(inp, os.R_OK):
        raise InvalidInputError(f"input file {inp} is not readable", hint="check its permissions")
    state = state_path_for(kept)
    named = [("--kept", kept), ("--dropped", dropped), ("state file", state)]
    if summary is not None:
        named.append(("--summary", summary))
    for flag, p in named:
        if _same_file(p, inp):
            raise InvalidInputError(f"{flag} {p} is the input file", hint="write the outputs to other files")
        if p.exists() and p.is_dir():
            raise InvalidInputError(f"{flag} {p} is a directory", hint="name a file")
    for i, (fa, a) in enumerate(named):
        for fb, b in named[i + 1 :]:
            if _same_file(a, b):
                raise InvalidInputError(f"{fa} and {fb} are the same file ({a})", hint="give each output its own path")


@dataclass
class _Line:
    lineno: int
    raw: bytes
    start: int = 0  # byte offset of the line in the input
    record: dict[str, Any] | None = None
    text: str | None = None
    error: str | None = None


def _message_text(value: list[Any]) -> str | None:
    """The contents of a ``[{"role", "content"}, ...]`` list joined by newlines, or None if it is not one."""
    parts = []
    for m in value:
        if not isinstance(m, dict) or not isinstance(m.get("content"), str):
            return None
        parts.append(m["content"])
    return "\n".join(parts)


def _parse(raw: bytes, lineno: int, text_field: str, start: int = 0) -> _Line:
    line = _Line(lineno, raw, start)
    try:
        decoded = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line.error = f"not valid UTF-8 (byte {exc.start})"
        return line
    try:
        record = json.loads(decoded.lstrip("\ufeff"))
    except json.JSONDecodeError as exc:
        line.error = f"not valid JSON ({exc.msg} at column {exc.colno})"
        return line
    if not isinstance(record, dict):
        line.error = f"not a JSON object (a {type(record).__name__})"
        return line
    if text_field not in record:
        fields = ", ".join(repr(k) for k in list(record)[:20]) or "none"
        line.error = f"no field {text_field!r} (this line has: {fields})"
        return line
    value = record[text_field]
    text = value if isinstance(value, str) else _message_text(value) if isinstance(value, list) else None
    if text is None:
        line.error = f"field {text_field!r} must be a string or a list of messages, got {type(value).__name__}"
        return line
    line.record, line.text = record, text
    return line


def _read_batch(fh: BinaryIO, lineno: int, offset: int, batch_size: int) -> tuple[list[_Line], int, int]:
    """Read until ``batch_size`` non-blank lines or ``MAX_BATCH_BYTES``; returns (lines, last line number, offset)."""
    out: list[_Line] = []
    start = offset
    while len(out) < batch_size and offset - start < MAX_BATCH_BYTES:
        raw = fh.readline()
        if not raw:
            break
        lineno += 1
        if raw.strip():
            out.append(_Line(lineno, raw, start=offset))
        offset += len(raw)
    return out, lineno, offset


# --------------------------------------------------------------------------------------------
# Writing, bad lines
# --------------------------------------------------------------------------------------------


def _lines_json(obj: dict[str, Any]) -> bytes:
    return (json.dumps(obj, ensure_ascii=False, default=str) + "\n").encode("utf-8")


def _bad_line_hint(error: str, text_field: str) -> str:
    if error.startswith("no field"):
        return f"name the text field with --text-field (now {text_field!r})"
    return "each line must be one JSON object"


def _record_bad_line(ln: _Line, summary: FilterSummary, df: BinaryIO, log: Callable[[str], None]) -> None:
    """Count a malformed line, report the first ones through ``log`` and write it to the dropped file."""
    summary.bad_lines += 1
    if len(summary.bad_line_examples) < MAX_BAD_EXAMPLES:
        summary.bad_line_examples.append({"line": ln.lineno, "error": ln.error})
    if summary.bad_lines <= MAX_BAD_LOGGED:
        log(f"warning: line {ln.lineno}: {ln.error}; written to the dropped file")
    elif summary.bad_lines == MAX_BAD_LOGGED + 1:
        log("warning: more bad lines; they are counted in the summary")
    raw = ln.raw.decode("utf-8", errors="replace").rstrip("\r\n")
    df.write(_lines_json({"layerguard": {"bad_line": True, "line": ln.lineno, "error": ln.error, "raw": raw}}))


# --------------------------------------------------------------------------------------------
# Resume state
# --------------------------------------------------------------------------------------------


def state_path_for(kept_path: str | Path) -> Path:
    """The resume state file of a run writing ``kept_path``."""
    p = Path(kept_path)
    return p.with_name(p.name + ".state.json")


def input_fingerprint(path: str | Path) -> dict[str, Any]:
    """Size, modification time and a sha256 of the first and last MiB of a file.

    Cheap on a multi-GB file and changes when the file is rewritten, appended to, truncated
    or touched (a touched but unchanged file is refused too: that errs on the safe side).
    """
    p = Path(path)
    st = p.stat()
    h = hashlib.sha256()
    with p.open("rb") as fh:
        h.update(fh.read(FINGERPRINT_CHUNK))
        if st.st_size > FINGERPRINT_CHUNK:
            fh.seek(max(FINGERPRINT_CHUNK, st.st_size - FINGERPRINT_CHUNK))
            h.update(fh.read(FINGERPRINT_CHUNK))
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "head_tail_sha256": h.hexdigest()}


def _write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with tmp.open("w", encoding="utf-8") as fh:
        json.dump(data, fh, indent=1, default=float)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def _save_state(
    path: Path,
    *,
    inp: Path,
    fingerprint: dict[str, Any],
    dropped: Path,
    offset: int,
    line: int,
    kept_bytes: int,
    dropped_bytes: int,
    summary: dict[str, Any],
) -> None:
    """Atomically replace the resume state with the committed position (read back by :func:`_load_state`)."""
    state = {
        "format": STATE_FORMAT,
        "input": str(inp.resolve()),
        "fingerprint": fingerprint,
        "dropped_path": str(dropped.resolve()),
        "offset": offset,
        "line": line,
        "kept_bytes": kept_bytes,
        "dropped_bytes": dropped_bytes,
        "summary": summary,
    }
    _write_json_atomic(path, state)


def _refuse_overwrite(resume: bool, kept: Path, dropped: Path) -> None:
    if not resume:
        return
    for p in (kept, dropped):
        if p.exists() and p.stat().st_size > 0:
            raise InvalidInputError(
                f"{p} already exists and there is no state file ({state_path_for(kept).name}) to resume from",
                hint="pass --no-resume to overwrite it, or choose other output paths",
            )


def _load_state(
    path: Path,
    inp: Path,
    kept: Path,
    dropped: Path,
    fingerprint: dict[str, Any],
    text_field: str,
    batch_size: int,
) -> dict[str, Any] | None:
    """The resume state, checked against this run; None when there is none."""
    if not path.exists():
        return None
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
        if state.get("format") != STATE_FORMAT:
            raise ValueError(f"format {state.get('format')!r}")
        int(state["offset"]), int(state["line"]), int(state["kept_bytes"]), int(state["dropped_bytes"])
        summary = state["summary"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise InvalidInputError(
            f"the resume state {path} is unreadable ({exc})", hint="pass --no-resume to start over"
        ) from None
    if state.get("input") != str(inp.resolve()):
        raise InvalidInputError(
            f"cannot resume: {path} belongs to a run on {state.get('input')}, not {inp.resolve()}",
            hint="use other output paths, or pass --no-resume to start over",
        )
    old = state.get("fingerprint", {})
    if old != fingerprint:
        what = [k for k in ("size", "mtime_ns", "head_tail_sha256") if old.get(k) != fingerprint.get(k)]
        raise InvalidInputError(
            f"cannot resume: {inp} changed since the interrupted run ({', '.join(what) or 'fingerprint'} differ: "
            f"size {old.get('size')} -> {fingerprint['size']})",
            hint="restore the original input, or pass --no-resume to filter the new file from the start",
        )
    if state.get("dropped_path") != str(dropped.resolve()):
        raise InvalidInputError(
            f"cannot resume: the interrupted run wrote dropped documents to {state.get('dropped_path')}",
            hint="pass the same --dropped, or --no-resume to start over",
        )
    for name, ours, theirs in (
        ("--text-field", text_field, summary.get("text_field")),
        ("--batch-size", batch_size, summary.get("batch_size")),
    ):
        if ours != theirs:
            raise InvalidInputError(
                f"cannot resume: the interrupted run used {name} {theirs!r}, this one {ours!r}",
                hint=f"rerun with {name} {theirs}, or pass --no-resume to start over",
            )
    if summary.get("complete"):
        return state
    for p, key in ((kept, "kept_bytes"), (dropped, "dropped_bytes")):
        have = p.stat().st_size if p.is_file() else -1
        if have < int(state[key]):
            raise InvalidInputError(
                f"cannot resume: {p} is missing or shorter ({max(have, 0)} bytes) than the {state[key]} committed",
                hint="the outputs were modified; pass --no-resume to start over",
            )
    return state


def _truncate_to_committed(state: dict[str, Any], kept: Path, dropped: Path) -> None:
    """Cut both outputs back to the sizes committed in ``state`` (dropping a half-written batch)."""
    for path, size in ((kept, int(state["kept_bytes"])), (dropped, int(state["dropped_bytes"]))):
        with path.open("r+b") as out_fh:
            out_fh.truncate(size)
