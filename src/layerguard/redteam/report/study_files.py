"""Finding the results of the red-team studies, and of an audit run, in their run directories.

Each study command writes its JSON into its ``--out`` directory, and the file tells the kind:

- ``layerguard redteam ciphers``: ``ciphers.json``;
- ``layerguard redteam bon``: ``bon.json``;
- ``layerguard redteam latent-attack``: ``latent_attack.json``;
- ``layerguard redteam crescendo|pair|agents``: ``summary.json`` whose ``attack`` key is
  ``crescendo``, ``pair`` or ``agents``.

An audit run (``layerguard audit``) also writes ``summary.json``, without an ``attack`` key;
:func:`load_audit_run` reads it with its ``results.jsonl``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from layerguard.data.files import read_jsonl_records
from layerguard.errors import InvalidInputError

STUDY_KINDS: tuple[str, ...] = ("ciphers", "bon", "latent_attack", "crescendo", "pair", "agents")
"""The study kinds the report has a section for."""

_FILES: tuple[tuple[str, str], ...] = (
    ("ciphers.json", "ciphers"),
    ("bon.json", "bon"),
    ("latent_attack.json", "latent_attack"),
)
_SUMMARY_KINDS = ("crescendo", "pair", "agents")  # the ``attack`` key of their summary.json
_WHAT = (
    "ciphers.json, bon.json or latent_attack.json (layerguard redteam ciphers|bon|latent-attack), or the "
    "summary.json of layerguard redteam crescendo|pair|agents"
)


@dataclass(frozen=True)
class StudyResult:
    """One study's JSON as its command wrote it.

    Attributes:
        kind: One of :data:`STUDY_KINDS`.
        data: The JSON object.
        source: Where it was read from (shown in its section; empty when built in memory).
    """

    kind: str
    data: Mapping[str, Any] = field(default_factory=dict)
    source: str = ""


def _read_json(path: Path) -> dict[str, Any]:
    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise InvalidInputError(
            f"{path} is not valid JSON ({exc.msg}, line {exc.lineno})",
            hint="the run may have been interrupted while writing it: run its command again with the same --out",
        ) from None
    except UnicodeDecodeError as exc:
        raise InvalidInputError(f"{path} is not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    if not isinstance(obj, dict):
        raise InvalidInputError(f"{path} holds a JSON {type(obj).__name__}, not an object", hint=f"expected {_WHAT}")
    return obj


def _is_audit(summary: Mapping[str, Any]) -> bool:
    return "attack" not in summary and any(k in summary for k in ("asr", "asr_by_attack", "n_cells"))


def _directory(path: Path, what: str, hint: str) -> Path:
    if not path.exists():
        raise InvalidInputError(f"{what} {path} does not exist", hint=hint)
    if not path.is_dir():
        raise InvalidInputError(f"{what} {path} is not a directory", hint=hint)
    return path


def load_studies(dirs: Iterable[str | Path]) -> list[StudyResult]:
    """The study results in each directory, in the order given (a directory may hold several).

    Args:
        dirs: Run directories of ``layerguard redteam ciphers|bon|latent-attack|crescendo|pair|agents``.

    Returns:
        One :class:`StudyResult` per study file found.

    Raises:
        InvalidInputError: a directory that does not exist, holds no study result, holds an
            audit run instead, or a study file that is not a JSON object.
    """
    out: list[StudyResult] = []
    for d in dirs:
        out += _load_dir(Path(d))
    return out


def _load_dir(d: Path) -> list[StudyResult]:
    _directory(d, "study directory", "pass the --out directory of a `layerguard redteam` study")
    found = [StudyResult(kind, _read_json(d / name), str(d / name)) for name, kind in _FILES if (d / name).is_file()]
    path = d / "summary.json"
    if path.is_file():
        summary = _read_json(path)
        attack = summary.get("attack")
        if attack in _SUMMARY_KINDS:
            found.append(StudyResult(str(attack), summary, str(path)))
        elif not found and _is_audit(summary):
            raise InvalidInputError(f"{d} holds an audit run, not a study", hint=f"pass it with --audit {d}")
        elif not found:
            raise InvalidInputError(
                f"{path} is not the summary of a study (its attack is {attack!r})",
                hint="pass the --out directory of layerguard redteam crescendo, pair or agents",
            )
    if not found:
        raise InvalidInputError(f"{d} holds no study result", hint=f"a study directory holds {_WHAT}")
    return found


def load_audit_run(run_dir: str | Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """An audit run's ``summary.json`` and the rows of its ``results.jsonl`` (none when the file is missing).

    Raises:
        InvalidInputError: no such directory, no ``summary.json``, a study's directory instead,
            or a file that is not valid JSON.
    """
    d = _directory(Path(run_dir), "audit run directory", "pass the --out directory of `layerguard audit`")
    path = d / "summary.json"
    if not path.is_file():
        raise InvalidInputError(f"{d} holds no summary.json", hint="pass the --out directory of `layerguard audit`")
    summary = _read_json(path)
    if summary.get("attack") in _SUMMARY_KINDS:
        raise InvalidInputError(
            f"{d} holds a {summary['attack']} study, not an audit run",
            hint="pass it as a study directory, without --audit",
        )
    rows: list[dict[str, Any]] = []
    results = d / "results.jsonl"
    if results.is_file():
        for line_no, row in read_jsonl_records(results):
            if isinstance(row, str):
                raise InvalidInputError(
                    f"{results}:{line_no}: {row}", hint="run the audit again, or pass its directory as it wrote it"
                )
            rows.append(row)
    return summary, rows
